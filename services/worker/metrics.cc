#include "services/worker/metrics.h"

#include <chrono>
#include <exception>

#include "services/worker/model_flops.h"

namespace dyt::worker {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Histogram::BucketBoundaries StepBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

Histogram::BucketBoundaries CheckpointBuckets() {
  return {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600};
}

}  // namespace

// One job's series; the optional ones (val loss, MFU, alpha) appear with their first value.
struct WorkerMetrics::Job {
  prometheus::Labels labels;
  int job_slots = 0;
  int64_t seq_len = 0;
  double flops_per_token = 0;
  prometheus::Gauge* start_time = nullptr;
  prometheus::Gauge* step = nullptr;
  prometheus::Gauge* target_step = nullptr;
  prometheus::Gauge* loss = nullptr;
  prometheus::Gauge* val_loss = nullptr;
  prometheus::Gauge* lr = nullptr;
  prometheus::Gauge* grad_norm = nullptr;
  prometheus::Gauge* tokens = nullptr;
  prometheus::Histogram* step_seconds = nullptr;
  prometheus::Gauge* flops_per_token_gauge = nullptr;
  prometheus::Gauge* mfu = nullptr;
  prometheus::Gauge* alpha_min = nullptr;
  prometheus::Gauge* alpha_mean = nullptr;
  prometheus::Gauge* alpha_max = nullptr;
  prometheus::Gauge* ckpt_step = nullptr;
  prometheus::Gauge* ckpt_time = nullptr;
  prometheus::Gauge* ckpt_bytes = nullptr;
  prometheus::Histogram* ckpt_seconds = nullptr;
};

WorkerMetrics::WorkerMetrics() = default;
WorkerMetrics::~WorkerMetrics() = default;

StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Create(
    const WorkerMetricsOptions& options) {
  if (options.peak_flops_per_slot < 0) {
    return InvalidArgument("peak_flops_per_slot: must be >= 0");
  }
  std::unique_ptr<WorkerMetrics> m(new WorkerMetrics());
  m->peak_flops_per_slot_ = options.peak_flops_per_slot;
  m->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Registry& r = *m->registry_;
  BuildGauge()
      .Name("dyt_worker_slots")
      .Help("Slots this worker offers, by kind")
      .Register(r)
      .Add({{"kind", options.kind}})
      .Set(options.slots);
  m->busy_ = &BuildGauge()
                  .Name("dyt_worker_slots_busy")
                  .Help("Slots held by running trainers")
                  .Register(r)
                  .Add({});
  m->trainers_ = &BuildGauge()
                      .Name("dyt_worker_trainers_running")
                      .Help("Trainer processes running")
                      .Register(r)
                      .Add({});
  m->restarts_ = &BuildCounter()
                      .Name("dyt_worker_trainer_restarts_total")
                      .Help("Job attempts after the first (attempt > 1) started on this worker")
                      .Register(r)
                      .Add({});
  m->connected_ = &BuildGauge()
                       .Name("dyt_worker_scheduler_connected")
                       .Help("1 while this worker is registered with the scheduler, else 0")
                       .Register(r)
                       .Add({});
  m->refused_ = &BuildGauge()
                     .Name("dyt_worker_scheduler_refused")
                     .Help(
                         "1 while the scheduler refuses this worker's token (its log says why; "
                         "it tries the token file again every --refused-retry-s), else 0")
                     .Register(r)
                     .Add({});
  auto gauge = [&r](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(r);
  };
  m->start_time_ = gauge("dyt_job_start_timestamp_seconds",
                         "Unix time the job's current attempt started on this worker");
  m->step_ = gauge("dyt_job_step", "Latest training step reported by rank 0");
  m->target_step_ = gauge("dyt_job_target_step", "The step the job trains to");
  m->loss_ = gauge("dyt_job_loss", "Latest training loss (NaN when the trainer reported NaN)");
  m->val_loss_ = gauge("dyt_job_val_loss", "Latest validation loss");
  m->lr_ = gauge("dyt_job_learning_rate", "Learning rate of the latest step");
  m->grad_norm_ = gauge("dyt_job_grad_norm", "Gradient norm of the latest step, before clipping");
  m->tokens_ = gauge("dyt_job_tokens_per_second", "Training throughput of the job (all ranks)");
  m->step_seconds_ = &BuildHistogram()
                          .Name("dyt_job_step_duration_seconds")
                          .Help("Wall time of the logged training steps")
                          .Register(r);
  m->flops_per_token_ = gauge("dyt_job_model_flops_per_token",
                              "Training FLOPs per token of the model (6N + 12 L d T, PaLM)");
  m->mfu_ = gauge("dyt_job_mfu_ratio",
                  "Model FLOPs utilisation: model FLOP/s over the peak FLOP/s of the job's slots "
                  "(only when the worker has --peak-flops)");
  m->alpha_ =
      gauge("dyt_job_dyt_alpha", "DyT alpha over the job's DyT layers: stat min, mean or max");
  m->ckpt_step_ = gauge("dyt_job_last_checkpoint_step", "Step of the newest checkpoint written");
  m->ckpt_time_ = gauge("dyt_job_last_checkpoint_timestamp_seconds",
                        "Unix time the newest checkpoint was written");
  m->ckpt_bytes_ = gauge("dyt_job_last_checkpoint_bytes", "Size of the newest checkpoint");
  m->ckpt_seconds_ = &BuildHistogram()
                          .Name("dyt_job_checkpoint_save_duration_seconds")
                          .Help("Time to write a checkpoint")
                          .Register(r);
  if (!options.listen.empty()) {
    try {
      m->exposer_ = std::make_unique<prometheus::Exposer>(options.listen);
    } catch (const std::exception& e) {
      return Unavailable("--metrics-listen " + options.listen + ": cannot listen: " + e.what());
    }
    m->exposer_->RegisterCollectable(m->registry_);
    const auto ports = m->exposer_->GetListeningPorts();
    m->port_ = ports.empty() ? 0 : ports.front();
  }
  return m;
}

void WorkerMetrics::SetBusy(int slots, int trainers) {
  busy_->Set(slots);
  trainers_->Set(trainers);
}

WorkerMetrics::Job& WorkerMetrics::JobLocked(const std::string& job_id) {
  std::unique_ptr<Job>& slot = jobs_[job_id];
  if (slot != nullptr) return *slot;
  slot = std::make_unique<Job>();
  Job& j = *slot;
  j.labels = {{"job_id", job_id}};
  j.start_time = &start_time_->Add(j.labels);
  j.start_time->Set(UnixNow());
  // The step's gauges appear with the first step (JobStep): a loss of 0 scraped before it made
  // min_over_time(dyt_job_loss) 0 and DytJobLossDiverging fire on a healthy job.
  j.step_seconds = &step_seconds_->Add(j.labels, StepBuckets());
  j.ckpt_seconds = &ckpt_seconds_->Add(j.labels, CheckpointBuckets());
  return j;
}

void WorkerMetrics::JobStarted(const std::string& job_id, int job_slots, int64_t seq_len) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = JobLocked(job_id);
  j.start_time->Set(UnixNow());
  j.job_slots = job_slots;
  j.seq_len = seq_len;
}

void WorkerMetrics::JobModel(const std::string& job_id, const ModelShape& model) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = JobLocked(job_id);
  j.flops_per_token = TrainingFlopsPerToken(model, j.seq_len);
  if (j.flops_per_token <= 0) return;
  if (j.flops_per_token_gauge == nullptr)
    j.flops_per_token_gauge = &flops_per_token_->Add(j.labels);
  j.flops_per_token_gauge->Set(j.flops_per_token);
}

void WorkerMetrics::JobStep(const std::string& job_id, const v1::Progress& p, double step_seconds,
                            bool has_alpha) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = JobLocked(job_id);
  if (j.step == nullptr) {
    j.step = &step_->Add(j.labels);
    j.target_step = &target_step_->Add(j.labels);
    j.loss = &loss_->Add(j.labels);
    j.lr = &lr_->Add(j.labels);
    j.grad_norm = &grad_norm_->Add(j.labels);
    j.tokens = &tokens_->Add(j.labels);
  }
  j.step->Set(static_cast<double>(p.step()));
  j.target_step->Set(static_cast<double>(p.steps()));
  j.loss->Set(p.loss());
  j.lr->Set(p.lr());
  j.grad_norm->Set(p.grad_norm());
  j.tokens->Set(p.tokens_per_s());
  if (step_seconds > 0) j.step_seconds->Observe(step_seconds);
  const double peak = peak_flops_per_slot_ * j.job_slots;
  const double mfu = ModelFlopsUtilization(j.flops_per_token, p.tokens_per_s(), peak);
  if (mfu > 0) {
    if (j.mfu == nullptr) j.mfu = &mfu_->Add(j.labels);
    j.mfu->Set(mfu);
  }
  if (has_alpha) {
    if (j.alpha_min == nullptr) {
      j.alpha_min = &alpha_->Add({{"job_id", job_id}, {"stat", "min"}});
      j.alpha_mean = &alpha_->Add({{"job_id", job_id}, {"stat", "mean"}});
      j.alpha_max = &alpha_->Add({{"job_id", job_id}, {"stat", "max"}});
    }
    j.alpha_min->Set(p.alpha_min());
    j.alpha_mean->Set(p.alpha_mean());
    j.alpha_max->Set(p.alpha_max());
  }
}

void WorkerMetrics::JobEval(const std::string& job_id, double val_loss) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = JobLocked(job_id);
  if (j.val_loss == nullptr) j.val_loss = &val_loss_->Add(j.labels);
  j.val_loss->Set(val_loss);
}

void WorkerMetrics::JobCheckpoint(const std::string& job_id, int64_t step, int64_t bytes,
                                  double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = JobLocked(job_id);
  if (j.ckpt_step == nullptr) {
    j.ckpt_step = &ckpt_step_->Add(j.labels);
    j.ckpt_time = &ckpt_time_->Add(j.labels);
    j.ckpt_bytes = &ckpt_bytes_->Add(j.labels);
  }
  j.ckpt_step->Set(static_cast<double>(step));
  j.ckpt_time->Set(UnixNow());
  j.ckpt_bytes->Set(static_cast<double>(bytes));
  if (seconds >= 0) j.ckpt_seconds->Observe(seconds);
}

void WorkerMetrics::RemoveJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  Job& j = *it->second;
  auto drop = [](auto* family, auto* metric) {
    if (metric != nullptr) family->Remove(metric);
  };
  drop(start_time_, j.start_time);
  drop(step_, j.step);
  drop(target_step_, j.target_step);
  drop(loss_, j.loss);
  drop(val_loss_, j.val_loss);
  drop(lr_, j.lr);
  drop(grad_norm_, j.grad_norm);
  drop(tokens_, j.tokens);
  drop(step_seconds_, j.step_seconds);
  drop(flops_per_token_, j.flops_per_token_gauge);
  drop(mfu_, j.mfu);
  drop(alpha_, j.alpha_min);
  drop(alpha_, j.alpha_mean);
  drop(alpha_, j.alpha_max);
  drop(ckpt_step_, j.ckpt_step);
  drop(ckpt_time_, j.ckpt_time);
  drop(ckpt_bytes_, j.ckpt_bytes);
  drop(ckpt_seconds_, j.ckpt_seconds);
  jobs_.erase(it);
}

}  // namespace dyt::worker
