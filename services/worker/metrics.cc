#include "services/worker/metrics.h"

#include <exception>

namespace dyt::worker {

StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Create(const std::string& listen,
                                                               const std::string& kind, int slots) {
  std::unique_ptr<WorkerMetrics> m(new WorkerMetrics());
  m->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Registry& r = *m->registry_;
  prometheus::BuildGauge()
      .Name("dyt_worker_slots")
      .Help("Slots this worker offers, by kind")
      .Register(r)
      .Add({{"kind", kind}})
      .Set(slots);
  m->busy_ = &prometheus::BuildGauge()
                  .Name("dyt_worker_slots_busy")
                  .Help("Slots held by running trainers")
                  .Register(r)
                  .Add({});
  m->trainers_ = &prometheus::BuildGauge()
                      .Name("dyt_worker_trainers_running")
                      .Help("Trainer processes running")
                      .Register(r)
                      .Add({});
  m->step_ = &prometheus::BuildGauge().Name("dyt_job_step").Help("Latest step").Register(r);
  m->loss_ = &prometheus::BuildGauge().Name("dyt_job_loss").Help("Latest loss").Register(r);
  m->tokens_ = &prometheus::BuildGauge()
                    .Name("dyt_job_tokens_per_second")
                    .Help("Training throughput of the job (all ranks)")
                    .Register(r);
  m->ckpt_step_ = &prometheus::BuildGauge()
                       .Name("dyt_job_last_checkpoint_step")
                       .Help("Step of the newest checkpoint written")
                       .Register(r);
  m->ckpt_age_ = &prometheus::BuildGauge()
                      .Name("dyt_job_last_checkpoint_age_seconds")
                      .Help("Seconds since the newest checkpoint was written")
                      .Register(r);
  m->restarts_ = &prometheus::BuildCounter()
                      .Name("dyt_worker_trainer_restarts_total")
                      .Help("Attempts after the first started on this worker")
                      .Register(r);
  if (!listen.empty()) {
    try {
      m->exposer_ = std::make_unique<prometheus::Exposer>(listen);
    } catch (const std::exception& e) {
      return Unavailable("--metrics-listen " + listen + ": cannot listen: " + e.what());
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
  std::lock_guard<std::mutex> lock(mu_);
  TickLocked();
}

WorkerMetrics::Job& WorkerMetrics::JobLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) return it->second;
  Job& j = jobs_[job_id];
  const prometheus::Labels labels = {{"job_id", job_id}};
  j.step = &step_->Add(labels);
  j.loss = &loss_->Add(labels);
  j.tokens = &tokens_->Add(labels);
  j.ckpt_step = &ckpt_step_->Add(labels);
  j.ckpt_age = &ckpt_age_->Add(labels);
  return j;
}

void WorkerMetrics::JobStep(const std::string& job_id, int64_t step, double loss,
                            double tokens_per_s) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = JobLocked(job_id);
  j.step->Set(static_cast<double>(step));
  j.loss->Set(loss);
  j.tokens->Set(tokens_per_s);
  TickLocked();
}

void WorkerMetrics::JobCheckpoint(const std::string& job_id, int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = JobLocked(job_id);
  j.ckpt_step->Set(static_cast<double>(step));
  j.ckpt_time = std::chrono::steady_clock::now();
  j.has_ckpt = true;
  TickLocked();
}

void WorkerMetrics::JobRestart(const std::string& job_id) {
  restarts_->Add({{"job_id", job_id}}).Increment();
}

void WorkerMetrics::RemoveJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  step_->Remove(it->second.step);
  loss_->Remove(it->second.loss);
  tokens_->Remove(it->second.tokens);
  ckpt_step_->Remove(it->second.ckpt_step);
  ckpt_age_->Remove(it->second.ckpt_age);
  jobs_.erase(it);
}

void WorkerMetrics::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  TickLocked();
}

void WorkerMetrics::TickLocked() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& [id, j] : jobs_) {
    if (j.has_ckpt) j.ckpt_age->Set(std::chrono::duration<double>(now - j.ckpt_time).count());
  }
}

}  // namespace dyt::worker
