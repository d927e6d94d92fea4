#include "trainer/train/trainer.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/checkpoint_writer.h"
#include "trainer/checkpoint/retention.h"

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
  last_loss_ = s.loss;
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
  last_val_loss_ = sum / double(n);
  return last_val_loss_;
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

StatusOr<RunOutcome> Trainer::Run(const ShutdownSignal* stop) {
  const TrainSection& tr = config_.train;
  const CheckpointSection& ck = config_.checkpoint;
  spdlog::info("model: {}", config_.model.Summary());
  spdlog::info("train: steps {}..{} x {} tokens (batch {} x accum {} x seq {}), {} threads",
               step(), tr.steps, config_.tokens_per_step(), tr.batch_size, tr.grad_accum,
               tr.seq_len, omp_get_max_threads());
  if (events_) {
    events_->Emit({{"event", "start"},
                   {"step", step()},
                   {"steps", tr.steps},
                   {"params", config_.model.ParameterCount()},
                   {"model", nlohmann::json::parse(ModelConfigToJson(config_.model))}});
  }
  last_save_time_ = std::chrono::steady_clock::now();
  const int64_t last = tr.stop_at_step > 0 ? std::min(tr.steps, tr.stop_at_step) : tr.steps;
  while (step() < last) {
    if (stop && stop->requested()) {
      spdlog::warn("signal {} received: stopping after step {}", stop->signal_number(), step());
      if (!ck.dir.empty() && last_saved_step_ != step()) DYT_RETURN_IF_ERROR(SaveCheckpoint());
      if (events_) events_->Emit({{"event", "stopped"}, {"step", step()}, {"signal", stop->signal_number()}});
      return RunOutcome::kStopped;
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
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                         last_save_time_).count() / 60.0;
    const bool due = (ck.every_steps > 0 && s.step % ck.every_steps == 0) ||
                     (ck.every_minutes > 0 && minutes >= ck.every_minutes) || s.step == tr.steps;
    if (!ck.dir.empty() && due) DYT_RETURN_IF_ERROR(SaveCheckpoint());
  }
  if (step() < tr.steps) {  // stopped at train.stop_at_step
    if (!ck.dir.empty() && last_saved_step_ != step()) DYT_RETURN_IF_ERROR(SaveCheckpoint());
    if (events_) events_->Emit({{"event", "paused"}, {"step", step()}, {"loss", last_loss_}});
    return RunOutcome::kPaused;
  }
  if (events_) events_->Emit({{"event", "done"}, {"step", step()}, {"loss", last_loss_}});
  return RunOutcome::kFinished;
}

CheckpointState Trainer::Snapshot() const {
  CheckpointState st;
  st.model_config_json = ModelConfigToJson(config_.model);
  st.train_config_yaml = config_.source_yaml;
  const int64_t n = model_->num_params();
  st.params.assign(model_->params(), model_->params() + n);
  st.adam_m = optim_->m();
  st.adam_v = optim_->v();
  st.adam_step = optim_->step();
  st.step = step();
  st.tokens_seen = step() * config_.tokens_per_step();
  st.loader = data_->position();
  st.rng_state = data_->rng_state();
  st.meta.job_id = config_.job_id;
  st.meta.train_loss = last_loss_;
  st.meta.val_loss = last_val_loss_;
  st.meta.unix_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  st.meta.code_version = DYT_VERSION;
  st.meta.world_size = 1;
  return st;
}

Status Trainer::SaveCheckpoint() {
  const CheckpointSection& ck = config_.checkpoint;
  if (ck.dir.empty()) return FailedPrecondition("checkpoint.dir: not set");
  SaveResult saved;
  DYT_RETURN_IF_ERROR(dyt::SaveCheckpoint(ck.dir, Snapshot(), model_->layout(), &saved));
  last_saved_step_ = step();
  last_save_time_ = std::chrono::steady_clock::now();
  spdlog::info("checkpoint saved: {} ({:.1f} MB in {:.2f} s)", saved.dir, saved.bytes / 1e6,
               saved.seconds);
  if (events_) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : saved.files) {
      files.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}});
    }
    events_->Emit({{"event", "checkpoint"},
                   {"step", step()},
                   {"dir", saved.dir},
                   {"bytes", saved.bytes},
                   {"seconds", saved.seconds},
                   {"loss", last_loss_},
                   {"files", files}});
  }
  RetentionReport report;
  const Status r = ApplyRetention(ck.dir, ck.keep_last, ck.keep_every_steps, &report);
  for (const auto& d : report.deleted) spdlog::info("retention: deleted {}", d);
  for (const auto& w : report.warnings) spdlog::warn("retention: {}", w);
  if (!r.ok()) spdlog::warn("retention failed (checkpoint kept): {}", r.ToString());
  return Status::Ok();
}

Status Trainer::Restore(const CheckpointState& st) {
  const int64_t n = model_->num_params();
  if (int64_t(st.params.size()) != n || int64_t(st.adam_m.size()) != n ||
      int64_t(st.adam_v.size()) != n) {
    return FailedPrecondition("checkpoint: parameter buffers do not match the model");
  }
  std::memcpy(model_->params(), st.params.data(), size_t(n) * sizeof(float));
  optim_->m() = st.adam_m;
  optim_->v() = st.adam_v;
  optim_->set_step(st.adam_step);
  DYT_RETURN_IF_ERROR(data_->Restore(st.loader, st.rng_state).WithContext("checkpoint"));
  last_loss_ = st.meta.train_loss;
  last_val_loss_ = st.meta.val_loss;
  last_saved_step_ = st.step;
  return Status::Ok();
}

Status Trainer::Resume(const std::string& resume) {
  if (resume.empty() || resume == "none") return Status::Ok();
  std::string dir;
  CheckpointState state;
  if (resume == "auto") {
    if (config_.checkpoint.dir.empty()) {
      return InvalidArgument("--resume auto: checkpoint.dir (or output.dir) is not set");
    }
    auto point = FindLatestGood(config_.checkpoint.dir, &config_.model);
    if (!point.ok() && point.status().code() == StatusCode::kNotFound) {
      spdlog::info("resume auto: no checkpoint in {}: starting fresh", config_.checkpoint.dir);
      return Status::Ok();
    }
    if (!point.ok()) return point.status();
    for (const auto& w : point->warnings) {
      spdlog::warn("resume: {}", w);
      if (events_) events_->Emit({{"event", "checkpoint_skipped"}, {"message", w}});
    }
    dir = point->dir;
    state = std::move(point->state);
  } else {
    auto st = LoadCheckpoint(resume, &config_.model);
    if (!st.ok()) return st.status();
    dir = resume;
    state = std::move(st).value();
  }
  DYT_RETURN_IF_ERROR(Restore(state));
  spdlog::info("resumed from {} at step {}", dir, step());
  if (events_) events_->Emit({{"event", "resumed"}, {"step", step()}, {"dir", dir}});
  return Status::Ok();
}

}  // namespace dyt
