#include "trainer/train/trainer.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace dyt {

Trainer::Trainer(const TrainConfig& config, EventWriter* events)
    : config_(config), events_(events) {}

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainConfig& config,
                                                   EventWriter* events) {
  if (config.train.threads > 0) omp_set_num_threads(config.train.threads);
  std::unique_ptr<Trainer> t(new Trainer(config, events));
  const TrainSection& tr = config.train;
  DYT_ASSIGN_OR_RETURN(t->data_, OpenBatchSource(config, /*rank=*/0, /*world_size=*/1));
  t->model_ = std::make_unique<LlamaCpu>(config.model, tr.batch_size, tr.seq_len);
  t->model_->InitParams(tr.seed);
  t->optim_ = std::make_unique<AdamW>(t->model_->layout(), config.optim.adamw);
  t->inputs_.resize(size_t(tr.batch_size) * tr.seq_len);
  t->targets_.resize(t->inputs_.size());
  return t;
}

StepStats Trainer::TrainStep() {
  const auto t0 = std::chrono::steady_clock::now();
  const TrainSection& tr = config_.train;
  StepStats s;
  model_->ZeroGrads();
  double loss = 0;
  for (int micro = 0; micro < tr.grad_accum; ++micro) {
    data_->Next(tr.batch_size, inputs_.data(), targets_.data());
    loss += model_->ForwardBackward(inputs_.data(), targets_.data(), tr.batch_size,
                                    1.0f / float(tr.grad_accum));
  }
  s.loss = loss / tr.grad_accum;
  float* g = model_->grads();
  const int64_t n = model_->num_params();
  s.grad_norm = config_.optim.grad_clip > 0 ? ClipGradNorm(g, n, config_.optim.grad_clip)
                                            : GradNorm(g, n);
  s.lr = config_.optim.schedule.At(optim_->step());
  optim_->Step(model_->params(), g, s.lr);
  s.step = optim_->step();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.tokens_per_s = double(config_.tokens_per_step()) / s.seconds;
  return s;
}

StatusOr<double> Trainer::Evaluate() {
  const int B = config_.train.batch_size;
  const int64_t n = std::min<int64_t>(config_.train.eval_batches, data_->num_val_batches(B));
  if (n <= 0) return FailedPrecondition("no validation data (set data.val or data.val_fraction)");
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    DYT_RETURN_IF_ERROR(data_->ValidationBatch(i, B, inputs_.data(), targets_.data()));
    sum += model_->Loss(inputs_.data(), targets_.data(), B);
  }
  return sum / double(n);
}

void Trainer::Log(const StepStats& s) {
  const std::vector<float> alphas = model_->Alphas();
  std::string alpha_text;
  nlohmann::json ev = {{"event", "step"},          {"step", s.step},
                       {"steps", config_.train.steps}, {"loss", s.loss},
                       {"lr", s.lr},               {"grad_norm", s.grad_norm},
                       {"tokens_per_s", s.tokens_per_s}, {"step_seconds", s.seconds},
                       {"tokens", s.step * config_.tokens_per_step()}};
  if (!alphas.empty()) {
    const auto [mn, mx] = std::minmax_element(alphas.begin(), alphas.end());
    double mean = 0;
    for (float a : alphas) mean += a;
    mean /= double(alphas.size());
    ev["alpha"] = alphas;  // per DyT layer: (attention, ffn) per block, then final
    ev["alpha_min"] = *mn;
    ev["alpha_mean"] = mean;
    ev["alpha_max"] = *mx;
    char buf[96];
    std::snprintf(buf, sizeof(buf), " alpha[min %.3f mean %.3f max %.3f final %.3f]", *mn, mean,
                  *mx, alphas.back());
    alpha_text = buf;
  }
  spdlog::info("step {}/{} loss {:.4f} lr {:.3e} grad_norm {:.3f} {:.0f} tok/s{}", s.step,
               config_.train.steps, s.loss, s.lr, s.grad_norm, s.tokens_per_s, alpha_text);
  if (events_) events_->Emit(std::move(ev));
}

Status Trainer::Run(const ShutdownSignal* stop) {
  const TrainSection& tr = config_.train;
  spdlog::info("model: {}", config_.model.Summary());
  spdlog::info("train: {} steps x {} tokens (batch {} x accum {} x seq {}), {} threads",
               tr.steps, config_.tokens_per_step(), tr.batch_size, tr.grad_accum, tr.seq_len,
               omp_get_max_threads());
  if (events_) {
    events_->Emit({{"event", "start"},
                   {"step", step()},
                   {"steps", tr.steps},
                   {"params", config_.model.ParameterCount()},
                   {"model", nlohmann::json::parse(ModelConfigToJson(config_.model))}});
  }
  while (step() < tr.steps) {
    if (stop && stop->requested()) {
      spdlog::warn("signal {} received: stopping after step {}", stop->signal_number(), step());
      return Status::Ok();
    }
    const StepStats s = TrainStep();
    if (!std::isfinite(s.loss)) {
      if (events_) events_->Emit({{"event", "error"}, {"step", s.step}, {"message", "loss is not finite"}});
      return Internal("loss is not finite at step " + std::to_string(s.step));
    }
    if (s.step % tr.log_every == 0 || s.step == 1 || s.step == tr.steps) Log(s);
    if (tr.eval_every > 0 && (s.step % tr.eval_every == 0 || s.step == tr.steps)) {
      auto val = Evaluate();
      if (!val.ok()) return val.status();
      spdlog::info("eval step {} val_loss {:.4f}", s.step, *val);
      if (events_) events_->Emit({{"event", "eval"}, {"step", s.step}, {"val_loss", *val}});
    }
  }
  if (events_) events_->Emit({{"event", "done"}, {"step", step()}});
  return Status::Ok();
}

}  // namespace dyt
