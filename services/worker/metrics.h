// The worker's Prometheus metrics (prometheus-cpp), served on --metrics-listen. Names follow
// Prometheus conventions: `dyt_` prefix, base units (seconds, bytes, ratios), `_total` counters,
// histograms for durations. docs/worker.md ("Metrics") lists them with their help text.
//
// Worker series (no job label):
//   dyt_worker_slots{kind}, dyt_worker_slots_busy, dyt_worker_trainers_running,
//   dyt_worker_trainer_restarts_total (attempts after the first started here),
//   dyt_worker_scheduler_connected (1 while registered with the scheduler: a worker that cannot
//   reach it, or is refused, still serves /metrics, so `up` alone does not say it works),
//   dyt_worker_scheduler_refused (1 while the scheduler refuses its token)
// Per-job series, label job_id only (never a step, rank or attempt), exported by the worker
// that runs the job's rank 0 (the one that reads its events) and removed when the job's
// attempt ends here, so cardinality is bounded by the jobs running now:
//   dyt_job_start_timestamp_seconds, dyt_job_step, dyt_job_target_step, dyt_job_loss,
//   dyt_job_val_loss (after the first eval), dyt_job_learning_rate, dyt_job_grad_norm,
//   dyt_job_tokens_per_second, dyt_job_step_duration_seconds (histogram),
//   dyt_job_model_flops_per_token, dyt_job_mfu_ratio (only with a peak FLOP/s configured),
//   dyt_job_dyt_alpha{stat="min|mean|max"} (DyT models; a summary over the job's DyT layers),
//   dyt_job_last_checkpoint_step, dyt_job_last_checkpoint_timestamp_seconds,
//   dyt_job_last_checkpoint_bytes, dyt_job_checkpoint_save_duration_seconds (histogram).
// Thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "dyt/v1/job.pb.h"
#include "services/worker/event_parser.h"

namespace dyt::worker {

struct WorkerMetricsOptions {
  std::string listen;  // HOST:PORT to serve /metrics on (port 0 picks one); empty: not served
  std::string kind;    // slot kind: "cpu" | "gpu"
  int slots = 0;
  // Peak FLOP/s of one slot (one GPU, or one CPU core); 0: unknown, dyt_job_mfu_ratio is not
  // exported.
  double peak_flops_per_slot = 0;
};

class WorkerMetrics {
 public:
  static StatusOr<std::unique_ptr<WorkerMetrics>> Create(const WorkerMetricsOptions& options);
  ~WorkerMetrics();
  int port() const { return port_; }  // 0 when not served
  prometheus::Registry& registry() { return *registry_; }

  void SetBusy(int slots, int trainers);
  void JobRestart() { restarts_->Increment(); }
  void SetConnected(bool connected) { connected_->Set(connected ? 1 : 0); }
  void SetRefused(bool refused) { refused_->Set(refused ? 1 : 0); }

  // A job's rank 0 started here; `job_slots` is the slots of the whole job (all ranks, all
  // workers), the denominator of its MFU. Creates the job's series.
  void JobStarted(const std::string& job_id, int job_slots, int64_t seq_len);
  // The trainer's "start" event: the model's shape, for its training FLOPs per token at the
  // seq_len given to JobStarted (model_flops.h).
  void JobModel(const std::string& job_id, const ModelShape& model);
  // A "step" event (the merged progress); `has_alpha` for DyT models.
  void JobStep(const std::string& job_id, const v1::Progress& progress, double step_seconds,
               bool has_alpha);
  void JobEval(const std::string& job_id, double val_loss);
  void JobCheckpoint(const std::string& job_id, int64_t step, int64_t bytes, double seconds);
  // Drops every series of the job (its attempt ended here).
  void RemoveJob(const std::string& job_id);

 private:
  WorkerMetrics();
  struct Job;
  Job& JobLocked(const std::string& job_id);

  double peak_flops_per_slot_ = 0;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  prometheus::Gauge* busy_ = nullptr;
  prometheus::Gauge* trainers_ = nullptr;
  prometheus::Counter* restarts_ = nullptr;
  prometheus::Gauge* connected_ = nullptr;
  prometheus::Gauge* refused_ = nullptr;
  prometheus::Family<prometheus::Gauge>* start_time_ = nullptr;
  prometheus::Family<prometheus::Gauge>* step_ = nullptr;
  prometheus::Family<prometheus::Gauge>* target_step_ = nullptr;
  prometheus::Family<prometheus::Gauge>* loss_ = nullptr;
  prometheus::Family<prometheus::Gauge>* val_loss_ = nullptr;
  prometheus::Family<prometheus::Gauge>* lr_ = nullptr;
  prometheus::Family<prometheus::Gauge>* grad_norm_ = nullptr;
  prometheus::Family<prometheus::Gauge>* tokens_ = nullptr;
  prometheus::Family<prometheus::Histogram>* step_seconds_ = nullptr;
  prometheus::Family<prometheus::Gauge>* flops_per_token_ = nullptr;
  prometheus::Family<prometheus::Gauge>* mfu_ = nullptr;
  prometheus::Family<prometheus::Gauge>* alpha_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ckpt_step_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ckpt_time_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ckpt_bytes_ = nullptr;
  prometheus::Family<prometheus::Histogram>* ckpt_seconds_ = nullptr;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
};

}  // namespace dyt::worker
