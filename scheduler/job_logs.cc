#include "scheduler/job_logs.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "scheduler/job_states.h"

namespace dyt {

void JobLogs::Append(const std::string& job_id, int attempt, int rank,
                     const std::vector<std::string>& lines, int64_t first_line) {
  if (lines.empty()) return;
  auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  {
    std::lock_guard lock(mu_);
    Buffer& buffer = jobs_[job_id];
    for (const auto& text : lines) {
      v1::LogLine line;
      *line.mutable_time() = now;
      line.set_rank(rank);
      line.set_attempt(attempt);
      if (text.size() > kMaxLineBytes) {
        line.set_text(text.substr(0, kMaxLineBytes) + " [" +
                      std::to_string(text.size() - kMaxLineBytes) +
                      " more bytes of this line cut by the scheduler]");
      } else {
        line.set_text(text);
      }
      if (first_line > 0) line.set_line(first_line++);
      buffer.bytes += line.text().size();
      buffer.lines.push_back(std::move(line));
      ++buffer.end;
      while (buffer.lines.size() > max_lines_ ||
             (buffer.bytes > max_bytes_ && buffer.lines.size() > 1)) {
        buffer.bytes -= buffer.lines.front().text().size();
        buffer.lines.pop_front();
      }
    }
  }
  cv_.notify_all();
}

bool JobLogs::Has(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  return jobs_.count(job_id) > 0;
}

void JobLogs::MarkRanBeforeStart(const std::string& job_id) {
  std::lock_guard lock(mu_);
  ran_before_start_.insert(job_id);
}

bool JobLogs::RanBeforeStart(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  return ran_before_start_.count(job_id) > 0;
}

void JobLogs::Finish(const std::string& job_id) {
  {
    std::lock_guard lock(mu_);
    Buffer& buffer = jobs_[job_id];
    if (!buffer.finished) {
      buffer.finished = true;
      finished_order_.push_back(job_id);
    }
    EvictLocked();
  }
  cv_.notify_all();
}

void JobLogs::EvictLocked() {
  while (jobs_.size() > max_jobs_ && !finished_order_.empty()) {
    jobs_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

JobLogs::Tail JobLogs::Last(const std::string& job_id, size_t n) const {
  std::lock_guard lock(mu_);
  Tail tail;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return tail;
  const Buffer& buffer = it->second;
  size_t take = std::min(n, buffer.lines.size());
  tail.lines.assign(buffer.lines.end() - static_cast<std::ptrdiff_t>(take), buffer.lines.end());
  tail.next = buffer.end;
  tail.finished = buffer.finished;
  if (n > take) tail.dropped = buffer.end - buffer.lines.size();
  return tail;
}

JobLogs::Tail JobLogs::Since(const std::string& job_id, uint64_t from,
                             std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  auto ready = [&] {
    auto it = jobs_.find(job_id);
    return it != jobs_.end() && (it->second.end > from || it->second.finished);
  };
  cv_.wait_for(lock, timeout, ready);
  Tail tail;
  tail.next = from;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return tail;
  const Buffer& buffer = it->second;
  uint64_t first_kept = buffer.end - buffer.lines.size();
  uint64_t start = std::max(from, first_kept);
  for (uint64_t p = start; p < buffer.end; ++p) tail.lines.push_back(buffer.lines[p - first_kept]);
  tail.next = buffer.end;
  tail.finished = buffer.finished;
  return tail;
}

namespace {

// "the workers keep every line in <work-dir>/jobs/job-1/attempt-<n>/rank-<r>.log (attempt 1
// on w1; attempt 2 on w2, w3)": the last kNamed attempts, from the job's attempt_workers.
std::string WhereWorkersKeepIt(const v1::Job& job) {
  constexpr int kNamed = 5;
  const auto& history = job.attempt_workers();
  std::string on;
  for (int i = std::max(0, history.size() - kNamed); i < history.size(); ++i) {
    std::string workers;
    for (const auto& w : history[i].worker_ids()) workers += (workers.empty() ? "" : ", ") + w;
    on += (on.empty() ? " (" : "; ") + std::string("attempt ") +
          std::to_string(history[i].attempt()) + " on " + workers;
  }
  if (!on.empty()) on += ")";
  return "the workers keep every line in <work-dir>/jobs/" + job.id() +
         "/attempt-<n>/rank-<r>.log" + on;
}

}  // namespace

std::string LogsNotice(const JobLogs& logs, const v1::Job& job, const JobLogs::Tail& got,
                       size_t requested) {
  using google::protobuf::util::TimeUtil;
  // In whole seconds of the events' own clock (kept_since_seconds).
  const int64_t since = logs.kept_since_seconds();
  bool ran = false, ran_before = logs.RanBeforeStart(job.id());
  for (const auto& e : job.events()) {
    if (e.state() != v1::RUNNING) continue;
    ran = true;
    ran_before = ran_before || TimeUtil::TimestampToSeconds(e.time()) < since;
  }
  if (!(ran || ran_before) || got.lines.size() >= requested) return "";
  if (ran_before) {
    return "output from before the scheduler started (" +
           TimeUtil::ToString(TimeUtil::SecondsToTimestamp(since)).substr(0, 19) +
           "Z) is not kept by it; " + WhereWorkersKeepIt(job);
  }
  if (got.dropped > 0) {
    return std::to_string(got.dropped) +
           " earlier lines are gone from the scheduler, which keeps the last " +
           std::to_string(logs.max_lines_per_job()) + " of a job (at most " +
           std::to_string(logs.max_bytes_per_job() >> 10) + " KiB); " + WhereWorkersKeepIt(job);
  }
  if (!logs.Has(job.id()) && IsTerminalJobState(job.state())) {
    return "the scheduler no longer keeps this job's output (it keeps that of the last " +
           std::to_string(logs.max_jobs()) + " jobs); " + WhereWorkersKeepIt(job);
  }
  return "";
}

}  // namespace dyt
