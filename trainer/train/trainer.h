// The training loop of dyt-train: model + optimizer + schedule + data, one optimizer step
// (gradient accumulation over micro-batches, clipping, AdamW) at a time, with human log lines
// and JSON events.
#pragma once

#include <cstdint>
#include <memory>

#include "common/signals.h"
#include "common/status.h"
#include "trainer/cpu/llama_cpu.h"
#include "trainer/optim/adamw.h"
#include "trainer/train/batch_source.h"
#include "trainer/train/events.h"
#include "trainer/train/train_config.h"

namespace dyt {

struct StepStats {
  int64_t step = 0;  // 1-based optimizer step just completed
  double loss = 0;   // mean over the step's micro-batches
  double grad_norm = 0;  // before clipping
  float lr = 0;
  double seconds = 0;
  double tokens_per_s = 0;
};

class Trainer {
 public:
  // Builds the model (initialised from train.seed), optimizer and data source. `events` may
  // be null; it must outlive the trainer.
  static StatusOr<std::unique_ptr<Trainer>> Create(const TrainConfig& config,
                                                   EventWriter* events);

  // One optimizer step.
  StepStats TrainStep();
  // Mean validation loss over up to train.eval_batches fixed batches.
  StatusOr<double> Evaluate();
  // Trains until train.steps, logging every log_every steps and evaluating every eval_every.
  // Returns early (OK) when `stop` is requested; the caller decides what that means.
  Status Run(const ShutdownSignal* stop);

  LlamaCpu& model() { return *model_; }
  AdamW& optimizer() { return *optim_; }
  int64_t step() const { return optim_->step(); }
  const TrainConfig& config() const { return config_; }

 private:
  Trainer(const TrainConfig& config, EventWriter* events);
  void Log(const StepStats& s);

  TrainConfig config_;
  EventWriter* events_;
  std::unique_ptr<LlamaCpu> model_;
  std::unique_ptr<AdamW> optim_;
  std::unique_ptr<BatchSource> data_;
  std::vector<int32_t> inputs_, targets_;
};

}  // namespace dyt
