// SubmitBatcher: group commit of job submissions, done explicitly.
//
// SubmitJob is served on gRPC's callback API: the handler validates the request and hands the
// new job here without blocking a thread. A few committer threads each take every submission
// waiting at that moment and write them as ONE batch (StateStore::CreateJobs: one WAL fsync for
// all), then answer each. While one batch syncs, the next one gathers, so throughput grows with
// load instead of being capped at one fsync per request; on this VM a synced write costs ~4 ms
// and a thread per blocked request cost more in futex and scheduler time than the writes
// themselves (bench/RESULTS.md, "Scheduler").
//
// Thread safe. The destructor commits what was handed over, then stops.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "scheduler/scheduler.h"

namespace dyt {

class SubmitBatcher {
 public:
  using Done = std::function<void(StatusOr<CreateJobResult>)>;

  // `scheduler` must outlive the batcher. committers >= 1; max_batch >= 1.
  SubmitBatcher(Scheduler* scheduler, int committers = 2, size_t max_batch = 2048);
  ~SubmitBatcher();
  SubmitBatcher(const SubmitBatcher&) = delete;
  SubmitBatcher& operator=(const SubmitBatcher&) = delete;

  // Queues the job; `done` runs on a committer thread once the job is durable (or failed).
  void Submit(StateStore::NewJob job, Done done);

 private:
  struct Pending {
    StateStore::NewJob job;
    Done done;
  };
  void Loop();

  Scheduler* const scheduler_;
  const size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dyt
