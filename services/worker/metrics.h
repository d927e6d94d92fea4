// The worker's Prometheus metrics (prometheus-cpp), served on --metrics-listen:
//   dyt_worker_slots{kind}                  slots this worker offers
//   dyt_worker_slots_busy                   slots held by running trainers
//   dyt_worker_trainers_running             trainer processes running
// per job running here (label job_id; removed when the job's attempt ends here):
//   dyt_job_step, dyt_job_loss, dyt_job_tokens_per_second   rank 0's latest step
//   dyt_job_last_checkpoint_step, dyt_job_last_checkpoint_age_seconds
// per job (kept for the life of the worker):
//   dyt_worker_trainer_restarts_total      attempts after the first (attempt > 1) started here
// Thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace dyt::worker {

class WorkerMetrics {
 public:
  // Serves the registry on `listen` (HOST:PORT, port 0 picks one) when not empty.
  static StatusOr<std::unique_ptr<WorkerMetrics>> Create(const std::string& listen,
                                                         const std::string& kind, int slots);
  int port() const { return port_; }  // 0 when not served
  prometheus::Registry& registry() { return *registry_; }

  void SetBusy(int slots, int trainers);
  void JobStep(const std::string& job_id, int64_t step, double loss, double tokens_per_s);
  void JobCheckpoint(const std::string& job_id, int64_t step);
  void JobRestart(const std::string& job_id);
  void RemoveJob(const std::string& job_id);
  // Refreshes the checkpoint ages (call periodically; also done by every other update).
  void Tick();

 private:
  WorkerMetrics() = default;
  struct Job {
    prometheus::Gauge* step = nullptr;
    prometheus::Gauge* loss = nullptr;
    prometheus::Gauge* tokens = nullptr;
    prometheus::Gauge* ckpt_step = nullptr;
    prometheus::Gauge* ckpt_age = nullptr;
    std::chrono::steady_clock::time_point ckpt_time{};
    bool has_ckpt = false;
  };
  Job& JobLocked(const std::string& job_id);
  void TickLocked();

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  prometheus::Gauge* busy_ = nullptr;
  prometheus::Gauge* trainers_ = nullptr;
  prometheus::Family<prometheus::Gauge>* step_ = nullptr;
  prometheus::Family<prometheus::Gauge>* loss_ = nullptr;
  prometheus::Family<prometheus::Gauge>* tokens_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ckpt_step_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ckpt_age_ = nullptr;
  prometheus::Family<prometheus::Counter>* restarts_ = nullptr;
  std::mutex mu_;
  std::map<std::string, Job> jobs_;
};

}  // namespace dyt::worker
