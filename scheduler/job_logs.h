// JobLogs: the recent output lines of every job's trainers, for GetJobLogs.
//
// Workers forward their trainers' stdout/stderr lines in batches; this keeps the newest
// `max_lines_per_job` per job in memory (a ring) and lets followers wait for new ones. Logs are
// not durable: after a scheduler restart a job's history starts empty (each worker keeps every
// line of its ranks in <work-dir>/jobs/<job>/attempt-<n>/rank-<r>.log). Logs of finished jobs
// are dropped when more than `max_jobs` jobs have logs, oldest finished first. LogsNotice says
// which of these a reader's answer is missing.
//
// Thread safe.
#pragma once

#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dyt/v1/job_service.pb.h"

namespace dyt {

class JobLogs {
 public:
  // A line longer than this is cut (the worker splits its trainers' output at 64 KiB already;
  // this bounds what any worker can make the scheduler hold).
  static constexpr size_t kMaxLineBytes = 64 * 1024;

  // A job keeps its newest lines up to both max_lines_per_job and max_bytes_per_job (the
  // lines' text), so that no job, and no GetJobLogs answer, outgrows memory.
  explicit JobLogs(size_t max_lines_per_job = 10000, size_t max_jobs = 1000,
                   size_t max_bytes_per_job = 8 << 20)
      : max_lines_(max_lines_per_job), max_jobs_(max_jobs), max_bytes_(max_bytes_per_job) {}

  // `first_line`: the number of lines[0] in the rank's output (LogBatch.first_line; 0: not
  // numbered); the lines get consecutive numbers from it (LogLine.line). A line over
  // kMaxLineBytes keeps its first kMaxLineBytes, marked as cut.
  void Append(const std::string& job_id, int attempt, int rank,
              const std::vector<std::string>& lines, int64_t first_line = 0);
  // Whether the job has lines kept (also after Finish, until evicted).
  bool Has(const std::string& job_id) const;
  // No more lines will come for this job: followers return; the job's lines become evictable.
  void Finish(const std::string& job_id);

  struct Tail {
    std::vector<v1::LogLine> lines;
    uint64_t next = 0;      // pass to Wait / Since to continue after these lines
    bool finished = false;  // the job will get no more lines
    uint64_t dropped = 0;   // Last: lines before `lines` that the ring no longer holds
  };
  // The last `n` lines of the job (oldest first); `dropped` counts the lines appended before
  // them that are gone, when `n` reaches back past the oldest line kept.
  Tail Last(const std::string& job_id, size_t n) const;
  // The lines after position `from` (as returned in Tail::next), waiting up to `timeout` for at
  // least one when there are none and the job is not finished.
  Tail Since(const std::string& job_id, uint64_t from, std::chrono::milliseconds timeout) const;

  // The job ran before kept_since_seconds() (a recovered job): LogsNotice says its early lines are
  // not here, however close its events' one-second timestamps are to kept_since_seconds().
  void MarkRanBeforeStart(const std::string& job_id);
  bool RanBeforeStart(const std::string& job_id) const;

  size_t max_lines_per_job() const { return max_lines_; }
  size_t max_bytes_per_job() const { return max_bytes_; }
  size_t max_jobs() const { return max_jobs_; }
  // When this JobLogs began keeping lines (the scheduler's start), in whole seconds since the
  // epoch from the clock job events are stamped with (TimeUtil::GetCurrentTime: time(2)'s
  // coarse clock, which may be a second behind std::chrono::system_clock at a boundary).
  int64_t kept_since_seconds() const { return kept_since_seconds_; }

 private:
  struct Buffer {
    std::deque<v1::LogLine> lines;
    uint64_t end = 0;  // position after the newest line (lines ever appended)
    size_t bytes = 0;  // text bytes of `lines`
    bool finished = false;
  };
  void EvictLocked();

  const size_t max_lines_;
  const size_t max_jobs_;
  const size_t max_bytes_;
  const int64_t kept_since_seconds_ = google::protobuf::util::TimeUtil::GetCurrentTime().seconds();
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::unordered_map<std::string, Buffer> jobs_;
  std::list<std::string> finished_order_;  // eviction order of finished jobs
  std::unordered_set<std::string> ran_before_start_;
};

// What GetJobLogs tells a reader whose answer (`got`, for a request of `requested` lines) lacks
// lines the job printed, and where to find them; "" when nothing is missing. The job's lines
// before the scheduler started, the lines the ring dropped, or all of them when a finished
// job's lines were evicted: each worker's rank-<r>.log keeps them. `job` as GetJob answers it
// (its events say when it ran; its placement names the workers).
std::string LogsNotice(const JobLogs& logs, const v1::Job& job, const JobLogs::Tail& got,
                       size_t requested);

}  // namespace dyt
