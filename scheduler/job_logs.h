// JobLogs: the recent output lines of every job's trainers, for GetJobLogs.
//
// Workers forward their trainers' stdout/stderr lines in batches; this keeps the newest
// `max_lines_per_job` per job in memory (a ring) and lets followers wait for new ones. Logs are
// not durable: after a scheduler restart a job's history starts empty (the trainers' own log
// files under the worker's work dir keep everything). Logs of finished jobs are dropped when more
// than `max_jobs` jobs have logs, oldest finished first.
//
// Thread safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "dyt/v1/job_service.pb.h"

namespace dyt {

class JobLogs {
 public:
  explicit JobLogs(size_t max_lines_per_job = 10000, size_t max_jobs = 1000)
      : max_lines_(max_lines_per_job), max_jobs_(max_jobs) {}

  void Append(const std::string& job_id, int attempt, int rank,
              const std::vector<std::string>& lines);
  // Whether the job has lines kept (also after Finish, until evicted).
  bool Has(const std::string& job_id) const;
  // No more lines will come for this job: followers return; the job's lines become evictable.
  void Finish(const std::string& job_id);

  struct Tail {
    std::vector<v1::LogLine> lines;
    uint64_t next = 0;      // pass to Wait / Since to continue after these lines
    bool finished = false;  // the job will get no more lines
  };
  // The last `n` lines of the job (oldest first).
  Tail Last(const std::string& job_id, size_t n) const;
  // The lines after position `from` (as returned in Tail::next), waiting up to `timeout` for at
  // least one when there are none and the job is not finished.
  Tail Since(const std::string& job_id, uint64_t from, std::chrono::milliseconds timeout) const;

 private:
  struct Buffer {
    std::deque<v1::LogLine> lines;
    uint64_t end = 0;  // position after the newest line (lines ever appended)
    bool finished = false;
  };
  void EvictLocked();

  const size_t max_lines_;
  const size_t max_jobs_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::unordered_map<std::string, Buffer> jobs_;
  std::list<std::string> finished_order_;  // eviction order of finished jobs
};

}  // namespace dyt
