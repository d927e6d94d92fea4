// dytctl watch and logs: the streaming commands.
#include <google/protobuf/util/time_util.h>  // Timestamp comparisons

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "services/cli/client.h"
#include "services/cli/command_util.h"
#include "services/cli/commands.h"
#include "services/cli/format.h"

namespace dyt::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxLogsTail = 10000;  // GetJobLogsRequest.tail's bound

// Follows a job until it ends: WatchJob, re-opened after a lost connection (it starts with the
// job as it is now, so nothing is missed but intermediate progress), or GetJob once a second
// against a scheduler that does not implement WatchJob.
Status FollowJob(DytClient& client, const std::string& id,
                 const std::function<void(const v1::Job&)>& on_job) {
  bool ended = false;
  int failures = 0;
  auto handle = [&](const v1::Job& job) {
    failures = 0;
    on_job(job);
    ended = IsTerminal(job.state());
    return !ended;
  };
  while (true) {
    Status s = client.Watch(id, handle);
    if (ended) return Status::Ok();
    if (s.code() == StatusCode::kUnimplemented) break;
    if (s.ok() || s.code() == StatusCode::kUnavailable) {
      if (++failures > 60) {
        return s.ok() ? Internal("the WatchJob stream kept ending before job " + id + " did") : s;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    return s;
  }
  while (true) {
    auto job = client.Get(id);
    if (!job.ok()) return job.status();
    handle(*job);
    if (ended) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// Renders watch updates: a line redrawn in place on a terminal, plain lines otherwise.
class WatchPrinter {
 public:
  explicit WatchPrinter(const CommandContext& ctx) : ctx_(ctx), start_(Clock::now()) {}

  void Show(const v1::Job& job) {
    std::ostream& out = *ctx_.out;
    if (ctx_.json) {
      out << ToJson(job, /*pretty=*/false) << std::endl;
      return;
    }
    const v1::Progress& p = job.progress();
    if (job.events_size() > 0) {
      // Every event since the watch began, also those between two updates (a failed attempt's
      // RESTARTING, whose reason says why, is followed by QUEUED within the same pass). The
      // history before the watch began is `get`'s, not repeated here but for the last event.
      if (events_shown_ < 0) events_shown_ = job.events_size() - 1;
      for (int i = events_shown_; i < job.events_size(); ++i) {
        const v1::JobEvent& e = job.events(i);
        ClearLine();
        out << LocalTime(e.time()) << "  " << job.id() << " " << v1::JobState_Name(e.state())
            << (e.reason().empty() ? "" : ": " + FirstLine(e.reason())) << "\n";
      }
      events_shown_ = std::max(events_shown_, job.events_size());
      state_ = job.state();
    } else if (job.state() != state_) {
      state_ = job.state();
      std::string reason = job.reason();
      if (reason.empty() && job.events_size() > 0) {
        const auto& last = *job.events().rbegin();
        if (last.state() == job.state()) reason = last.reason();
      }
      ClearLine();
      out << LocalTime(job.updated()) << "  " << job.id() << " " << v1::JobState_Name(state_)
          << (reason.empty() ? "" : ": " + Safe(reason)) << "\n";
    }
    if (job.last_checkpoint_step() != checkpoint_) {
      checkpoint_ = job.last_checkpoint_step();
      if (checkpoint_ > 0) {
        ClearLine();
        out << "checkpoint at step " << checkpoint_ << "\n";
      }
    }
    if (job.state() == v1::RUNNING && p.step() > 0) {
      if (first_step_ < 0 || p.step() < first_step_) {
        first_step_ = p.step();
        first_time_ = Clock::now();
      }
    }
    const int64_t steps = p.steps() > 0 ? p.steps() : job.spec().train().steps();
    const bool changed = p.step() != step_ || p.val_loss() != val_loss_;
    step_ = p.step();
    val_loss_ = p.val_loss();
    if (IsTerminal(job.state()) || p.step() == 0) return;
    if (ctx_.tty) {
      Redraw(job, steps);
    } else if (changed) {
      out << ProgressText(job, steps) << "\n" << std::flush;
    }
  }

  void End(const v1::Job& job) {
    ClearLine();
    if (ctx_.json) return;
    const v1::Progress& p = job.progress();
    double s = std::chrono::duration<double>(Clock::now() - start_).count();
    *ctx_.out << job.id() << " " << v1::JobState_Name(job.state()) << ": step " << StepsText(job);
    if (p.loss() != 0) *ctx_.out << "  loss " << Fixed(p.loss(), 4);
    if (p.val_loss() != 0) *ctx_.out << "  val loss " << Fixed(p.val_loss(), 4);
    *ctx_.out << "  (watched " << Duration(s) << ")\n";
    // Why it failed or was cancelled, whole (a failed rank's reason carries its stderr tail,
    // of which the event lines show only the first line).
    if (job.state() != v1::SUCCEEDED && !job.reason().empty()) {
      *ctx_.out << "reason: " << Safe(job.reason()) << "\n";
    }
    *ctx_.out << std::flush;
  }

 private:
  // A reason as printed: control characters escaped on a terminal, lines kept.
  std::string Safe(const std::string& reason) const {
    return ctx_.tty ? TerminalSafe(reason, /*keep_newlines=*/true) : reason;
  }
  // Its first line, and how many more there are (the end of the watch prints them all).
  std::string FirstLine(const std::string& reason) const {
    const size_t nl = reason.find('\n');
    if (nl == std::string::npos) return Safe(reason);
    const auto more =
        std::count(reason.begin() + static_cast<std::ptrdiff_t>(nl), reason.end(), '\n');
    return Safe(reason.substr(0, nl)) + " [+" + std::to_string(more) + " lines]";
  }

  std::string ProgressText(const v1::Job& job, int64_t steps) const {
    const v1::Progress& p = job.progress();
    std::string text = "step ";
    text += std::to_string(p.step());
    text += '/';
    text += std::to_string(steps);
    if (steps > 0) {
      text += ' ';
      text += std::to_string(static_cast<int>(100.0 * p.step() / steps));
      text += '%';
    }
    text += "  ETA " + Eta(p.step(), steps);
    if (p.loss() != 0) text += "  loss " + Fixed(p.loss(), 4);
    if (p.val_loss() != 0) text += "  val " + Fixed(p.val_loss(), 4);
    if (p.tokens_per_s() != 0) text += "  " + Compact(p.tokens_per_s()) + " tok/s";
    return text;
  }

  std::string Eta(int64_t step, int64_t steps) const {
    if (first_step_ < 0 || step <= first_step_) return "?";
    double dt = std::chrono::duration<double>(Clock::now() - first_time_).count();
    double rate = (step - first_step_) / dt;
    return rate > 0 ? Duration((steps - step) / rate) : "?";
  }

  void Redraw(const v1::Job& job, int64_t steps) {
    *ctx_.out << "\r\033[K" << Bar(job.progress().step(), steps, 30) << " "
              << ProgressText(job, steps) << std::flush;
    drawn_ = true;
  }

  void ClearLine() {
    if (drawn_) *ctx_.out << "\r\033[K";
    drawn_ = false;
  }

  const CommandContext& ctx_;
  Clock::time_point start_;
  v1::JobState state_ = v1::JOB_STATE_UNSPECIFIED;
  int64_t step_ = -1;
  double val_loss_ = 0;
  int64_t checkpoint_ = 0;
  int64_t first_step_ = -1;
  Clock::time_point first_time_;
  bool drawn_ = false;
  int events_shown_ = -1;  // job.events printed so far (-1: none seen yet)
};

}  // namespace

int RunWatch(const CommandContext& ctx, const std::string& id) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  WatchPrinter printer(ctx);
  v1::Job last;
  bool seen = false;
  Status s = FollowJob(client, id, [&](const v1::Job& job) {
    last = job;
    seen = true;
    printer.Show(job);
  });
  if (!s.ok()) {
    if (seen) printer.End(last);
    return Fail(ctx, s);
  }
  printer.End(last);
  return last.state() == v1::SUCCEEDED ? kExitOk : kExitJobNotSucceeded;
}

int RunLogs(const CommandContext& ctx, const LogsArgs& args) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  v1::GetJobLogsRequest request;
  request.set_id(args.id);
  request.set_tail(args.tail);
  request.set_follow(args.follow);
  // With --follow a lost connection (a scheduler restart, a network blip) is reopened like
  // watch's, for up to a minute of failures in a row. The reopened stream starts with the
  // retained history again: a line whose number (LogLine.line, per attempt and rank) is not
  // above the last one printed of its rank is skipped. Lines from a scheduler or worker that
  // does not number them are told apart by time and text instead (identical lines in the same
  // second are then printed once).
  std::map<std::pair<int, int>, int64_t> last_line;  // (attempt, rank) -> last number printed
  google::protobuf::Timestamp last_time;
  std::set<std::string> printed_at_last;  // rank, attempt and text of lines at last_time
  auto key = [](const v1::LogLine& l) {
    return std::to_string(l.rank()) + "/" + std::to_string(l.attempt()) + "/" + l.text();
  };
  auto seen = [&](const v1::LogLine& line) {
    if (line.line() > 0) {
      int64_t& last = last_line[{line.attempt(), line.rank()}];
      if (line.line() <= last) return true;
      last = line.line();
      return false;
    }
    if (line.time() < last_time) return true;
    if (line.time() == last_time && !printed_at_last.insert(key(line)).second) return true;
    if (line.time() > last_time) {
      last_time = line.time();
      printed_at_last = {key(line)};
    }
    return false;
  };
  auto print = [&](const v1::LogLine& line) {
    if (seen(line)) return true;
    if (ctx.json) {
      *ctx.out << ToJson(line, /*pretty=*/false) << "\n";
    } else {
      if (line.rank() != 0) *ctx.out << "[rank " << line.rank() << "] ";
      *ctx.out << (ctx.tty && !args.raw ? TerminalSafe(line.text()) : line.text()) << "\n";
    }
    if (args.follow) ctx.out->flush();
    return true;
  };
  // Said once, also when a reconnect hears it again.
  bool noted = false;
  auto note = [&](const std::string& notice) {
    if (!noted) *ctx.err << "dytctl: note: " << notice << std::endl;
    noted = true;
  };
  Status s = client.Logs(request, print, note);
  for (int failures = 0; args.follow && s.code() == StatusCode::kUnavailable && failures < 60;
       ++failures) {
    if (failures == 0) *ctx.err << "dytctl: lost the scheduler; reconnecting" << std::endl;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    request.set_tail(kMaxLogsTail);
    bool got_any = false;
    s = client.Logs(
        request,
        [&](const v1::LogLine& line) {
          got_any = true;
          return print(line);
        },
        note);
    if (got_any) failures = -1;  // a session that delivered resets the count
  }
  ctx.out->flush();
  if (!s.ok()) return Fail(ctx, s);
  return kExitOk;
}

}  // namespace dyt::cli
