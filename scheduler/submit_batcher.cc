#include "scheduler/submit_batcher.h"

#include <utility>

namespace dyt {

SubmitBatcher::SubmitBatcher(Scheduler* scheduler, int committers, size_t max_batch)
    : scheduler_(scheduler), max_batch_(max_batch > 0 ? max_batch : 1) {
  for (int i = 0; i < (committers > 0 ? committers : 1); ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

SubmitBatcher::~SubmitBatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void SubmitBatcher::Submit(StateStore::NewJob job, Done done) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back({std::move(job), std::move(done)});
  }
  cv_.notify_one();
}

void SubmitBatcher::Loop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and nothing left to commit
      while (!pending_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    std::vector<StateStore::NewJob> jobs;
    jobs.reserve(batch.size());
    for (auto& p : batch) jobs.push_back(std::move(p.job));
    std::vector<StatusOr<CreateJobResult>> results = scheduler_->SubmitMany(std::move(jobs));
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
  }
}

}  // namespace dyt
