// dytctl submit, list, get, cancel, checkpoints, workers.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <sstream>

#include "common/job_run_time.h"
#include "common/job_spec_limits.h"
#include "services/cli/client.h"
#include "services/cli/command_util.h"
#include "services/cli/commands.h"
#include "services/cli/format.h"
#include "services/cli/job_spec_yaml.h"

namespace dyt::cli {
namespace {

std::string JoinPaths(const google::protobuf::RepeatedPtrField<std::string>& paths) {
  std::string s;
  for (const auto& p : paths) s += (s.empty() ? "" : ", ") + p;
  return s;
}

// `terminal`: reasons (a failed rank's carries its stderr tail) are shown TerminalSafe.
void PrintJob(std::ostream& out, const v1::Job& job, bool terminal) {
  const v1::JobSpec& s = job.spec();
  const int64_t now = NowUnix();
  out << job.id() << "  " << s.name() << "  (owner " << s.owner() << ", priority " << s.priority()
      << ", max_restarts " << s.max_restarts() << ")\n";
  std::string reason = job.reason();
  if (reason.empty() && job.events_size() > 0 && job.events().rbegin()->state() == job.state()) {
    reason = job.events().rbegin()->reason();  // the event that put it in this state
  }
  if (terminal) reason = TerminalSafe(reason, /*keep_newlines=*/true);
  // A failed rank's reason carries its stderr tail on the lines after the first: indented
  // under the state, not flush with the fields below.
  for (size_t nl = reason.find('\n'); nl != std::string::npos; nl = reason.find('\n', nl + 1)) {
    reason.insert(nl + 1, "             ");
  }
  out << "state:       " << v1::JobState_Name(job.state()) << " (attempt " << job.attempt() << ")"
      << (reason.empty() ? "" : ": " + reason) << "\n";
  out << "model:       " << s.model().preset() << ", norm "
      << (s.model().norm().empty() ? "preset default" : s.model().norm()) << "\n";
  if (s.data().synthetic()) {
    out << "data:        synthetic\n";
  } else {
    out << "data:        " << JoinPaths(s.data().train_paths()) << "\n";
    if (s.data().val_paths_size() > 0) {
      out << "validation:  " << JoinPaths(s.data().val_paths()) << "\n";
    }
  }
  if (!s.data().tokenizer_path().empty()) {
    out << "tokenizer:   " << s.data().tokenizer_path() << "\n";
  }
  const v1::TrainSpec& t = s.train();
  out << "train:       " << t.steps() << " steps, batch " << t.batch_size();
  if (t.seq_len() > 0) out << " x seq " << t.seq_len();
  if (t.grad_accum() > 1) out << " x accum " << t.grad_accum();
  if (s.optimizer().lr() > 0) out << ", lr " << s.optimizer().lr();
  out << "\n";
  const v1::Resources& r = s.resources();
  out << "resources:   " << r.ranks() << (r.ranks() == 1 ? " rank" : " ranks") << " x "
      << std::max(1, r.slots_per_rank()) << " " << r.kind() << " slot"
      << (std::max(1, r.slots_per_rank()) == 1 ? "" : "s") << "\n";
  const v1::CheckpointPolicy& c = s.checkpoint();
  out << "checkpoints: ";
  if (c.every_steps() > 0) out << "every " << c.every_steps() << " steps; ";
  if (c.every_minutes() > 0) out << "every " << c.every_minutes() << " min; ";
  if (c.keep_last() > 0) out << "keep last " << c.keep_last() << "; ";
  out << "latest: "
      << (job.last_checkpoint_step() > 0 ? "step " + std::to_string(job.last_checkpoint_step())
                                         : std::string("none yet"))
      << "\n";
  for (const auto& p : job.placement()) {
    std::string slots;
    for (int slot : p.slots()) {
      if (!slots.empty()) slots += ',';
      slots += std::to_string(slot);
    }
    out << "placement:   rank " << p.rank() << " on " << p.worker_id() << " slots [" << slots
        << "]\n";
  }
  if (job.attempt_workers_size() > 0) {
    // Where each attempt ran: its ranks' full output is on those workers (docs/worker.md).
    constexpr int kShown = 5;
    const auto& history = job.attempt_workers();
    out << "ran on:      ";
    if (history.size() > kShown) out << "(" << history.size() - kShown << " earlier) ";
    for (int i = std::max(0, history.size() - kShown); i < history.size(); ++i) {
      out << (i > std::max(0, history.size() - kShown) ? "; " : "") << "attempt "
          << history[i].attempt() << " on ";
      for (int w = 0; w < history[i].worker_ids_size(); ++w) {
        out << (w > 0 ? ", " : "") << history[i].worker_ids(w);
      }
    }
    out << "\n";
  }
  const v1::Progress& pr = job.progress();
  out << "progress:    " << StepsText(job);
  if (pr.steps() > 0) {
    out << " (" << static_cast<int>(100.0 * pr.step() / pr.steps()) << "%)";
  }
  if (pr.loss() != 0) out << "  loss " << Fixed(pr.loss(), 4);
  if (pr.val_loss() != 0) out << "  val loss " << Fixed(pr.val_loss(), 4);
  if (pr.tokens_per_s() != 0) out << "  " << Compact(pr.tokens_per_s()) << " tok/s";
  if (pr.lr() != 0) out << "  lr " << pr.lr();
  out << "\n";
  const double ran = RunSeconds(job, PreciseNow());
  if (ran > 0 || s.time_limit_s() > 0) {
    out << "run time:    " << Duration(ran);
    if (s.time_limit_s() > 0) out << " of time_limit_s " << s.time_limit_s();
    out << "\n";
  }
  out << "created:     " << LocalTime(job.created()) << " (" << Age(job.created(), now)
      << " ago), updated " << LocalTime(job.updated()) << "\n";
  if (job.events_size() > 0) {
    out << "events:\n";
    Table events({"  TIME", "STATE", "REASON"});
    for (const auto& e : job.events()) {
      // One line per event: a failed rank's reason carries its stderr tail, many lines long.
      std::string reason = terminal ? TerminalSafe(e.reason(), /*keep_newlines=*/true) : e.reason();
      if (const size_t nl = reason.find('\n'); nl != std::string::npos) {
        const auto more =
            std::count(reason.begin() + static_cast<std::ptrdiff_t>(nl), reason.end(), '\n');
        reason = reason.substr(0, nl) + " [+" + std::to_string(more) +
                 " lines: dytctl --output json get " + job.id() + "]";
      }
      events.AddRow({"  " + LocalTime(e.time()), v1::JobState_Name(e.state()), reason});
    }
    events.Print(out);
  }
}

}  // namespace

std::string StepsText(const v1::Job& job) {
  const v1::Progress& p = job.progress();
  int64_t steps = p.steps() > 0 ? p.steps() : job.spec().train().steps();
  if (p.step() == 0 && job.state() != v1::RUNNING && job.state() != v1::SUCCEEDED) {
    return "-/" + std::to_string(steps);
  }
  return std::to_string(p.step()) + "/" + std::to_string(steps);
}

std::string NewClientRequestId() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return std::string("dytctl-") + buf;
}

int RunSubmit(const CommandContext& ctx, const SubmitArgs& args) {
  auto file = LoadJobSpecFile(args.file, args.owner);
  if (!file.ok()) return Fail(ctx, file.status());
  for (const auto& set : args.sets) {
    Status s = ApplyJobSpecOverride(set, *file);
    if (!s.ok()) return FailUsage(ctx, s.message());
  }
  v1::JobSpec& spec = file->spec;
  if (args.name) {
    spec.set_name(*args.name);
    NoteOverride(*file, "name", "--name " + *args.name);
  }
  if (args.steps) {
    spec.mutable_train()->set_steps(*args.steps);
    NoteOverride(*file, "train.steps", "--steps " + std::to_string(*args.steps));
  }
  if (args.priority) {
    spec.set_priority(*args.priority);
    NoteOverride(*file, "priority", "--priority " + std::to_string(*args.priority));
  }
  if (args.ranks) {
    spec.mutable_resources()->set_ranks(*args.ranks);
    NoteOverride(*file, "resources.ranks", "--ranks " + std::to_string(*args.ranks));
  }
  // The scheduler refuses bigger specs; gRPC would refuse them first with its own message.
  if (const size_t bytes = spec.ByteSizeLong(); bytes > JobSpecLimits::kMaxSpecBytes) {
    const int paths = spec.data().train_paths_size() + spec.data().val_paths_size();
    return Fail(ctx, args.file + ": the job spec is " + std::to_string(bytes) +
                         " bytes serialized; the scheduler takes at most " +
                         std::to_string(JobSpecLimits::kMaxSpecBytes) + " (" +
                         (paths > 1000 ? std::to_string(paths) +
                                             " data paths: name shards with a glob such as "
                                             "shards/train-*.bin"
                                       : std::string("a spec is a few KiB")) +
                         ")");
  }
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto job =
      args.dry_run ? client.ValidateSubmission(spec) : client.Submit(spec, NewClientRequestId());
  if (!job.ok()) {
    if (job.status().code() == StatusCode::kInvalidArgument) {
      return Fail(ctx, AttributeServerError(*file, job.status().message()));
    }
    return Fail(ctx, job.status());
  }
  if (ctx.json) {
    // With --watch, watch's JSON lines follow: one object per line from the start.
    *ctx.out << ToJson(*job, /*pretty=*/!args.watch) << "\n";
  } else if (args.dry_run) {
    *ctx.out << args.file << ": valid; job " << job->spec().name() << " (owner "
             << job->spec().owner() << ", priority " << job->spec().priority() << ") "
             << job->reason() << "; not submitted (--dry-run)\n";
  } else {
    *ctx.out << job->id() << "\n";
  }
  if (args.watch && !args.dry_run) {
    ctx.out->flush();  // the id before the progress, also through a pipe
    return RunWatch(ctx, job->id());
  }
  return kExitOk;
}

int RunList(const CommandContext& ctx, const ListArgs& args) {
  v1::ListJobsRequest filter;
  if (!args.state.empty()) {
    std::string upper = args.state;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    v1::JobState state;
    if (!v1::JobState_Parse(upper, &state) || state == v1::JOB_STATE_UNSPECIFIED) {
      return FailUsage(ctx, "--state: unknown state '" + args.state +
                                "' (queued, scheduled, running, succeeded, failed, cancelled, "
                                "preempted, restarting)");
    }
    filter.set_state(state);
  }
  filter.set_owner(args.owner);
  filter.set_name(args.name);
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto jobs = client.ListAll(filter);
  if (!jobs.ok()) return Fail(ctx, jobs.status());
  if (ctx.json) {
    v1::ListJobsResponse all;
    for (auto& j : *jobs) *all.add_jobs() = std::move(j);
    *ctx.out << ToJson(all) << "\n";
    return kExitOk;
  }
  const int64_t now = NowUnix();
  Table table({"ID", "NAME", "OWNER", "STATE", "PROGRESS", "LOSS", "TOK/S", "AGE"});
  for (const auto& j : *jobs) {
    const auto& p = j.progress();
    table.AddRow({j.id(), j.spec().name(), j.spec().owner(), v1::JobState_Name(j.state()),
                  StepsText(j), Fixed(p.loss(), 4),
                  p.tokens_per_s() > 0 ? Compact(p.tokens_per_s()) : "-", Age(j.created(), now)});
  }
  table.Print(*ctx.out);
  return kExitOk;
}

int RunGet(const CommandContext& ctx, const std::string& id) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto job = client.Get(id);
  if (!job.ok()) return Fail(ctx, job.status());
  if (ctx.json) {
    *ctx.out << ToJson(*job) << "\n";
  } else {
    PrintJob(*ctx.out, *job, ctx.tty);
  }
  return kExitOk;
}

int RunCancel(const CommandContext& ctx, const std::string& id, const std::string& reason) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto job = client.Cancel(id, reason);
  if (!job.ok()) return Fail(ctx, job.status());
  if (ctx.json) {
    *ctx.out << ToJson(*job) << "\n";
  } else {
    std::string why = job->events_size() > 0 ? job->events().rbegin()->reason() : reason;
    *ctx.out << job->id() << " " << v1::JobState_Name(job->state())
             << (why.empty() ? "" : " (" + why + ")") << "\n";
  }
  return kExitOk;
}

int RunCheckpoints(const CommandContext& ctx, const std::string& id) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto list = client.ListCheckpoints(id);
  if (!list.ok()) return Fail(ctx, list.status());
  if (ctx.json) {
    v1::ListCheckpointsResponse response;
    for (auto& c : *list) *response.add_checkpoints() = std::move(c);
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  if (list->empty()) {
    *ctx.out << "job " << id << " has no checkpoints yet\n";
    return kExitOk;
  }
  const int64_t now = NowUnix();
  Table table({"STEP", "ATTEMPT", "FILES", "SIZE", "LOSS", "VAL LOSS", "AGE", "PATH"});
  for (const auto& c : *list) {
    // Attempt 0: a checkpoint from before the trainer recorded its attempt.
    table.AddRow({std::to_string(c.step()), c.attempt() > 0 ? std::to_string(c.attempt()) : "-",
                  std::to_string(c.files_size()), Bytes(c.total_bytes()), Fixed(c.loss(), 4),
                  Fixed(c.val_loss(), 4), Age(c.created(), now), c.path()});
  }
  table.Print(*ctx.out);
  return kExitOk;
}

}  // namespace dyt::cli
