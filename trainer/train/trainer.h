// The training loop of dyt-train: model + optimizer + schedule + data, one optimizer step
// (gradient accumulation over micro-batches, clipping, AdamW) at a time, with human log lines,
// JSON events and checkpoints.
//
// Checkpoints are taken only between optimizer steps (never inside gradient accumulation), so
// a resumed run replays exactly the same micro-batches: N steps straight and k steps + save +
// resume + N-k steps give bit-identical parameters and losses on the same machine and thread
// count (tests/trainer/resume_test.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "common/signals.h"
#include "common/status.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_state.h"
#include "trainer/dist/communicator.h"
#include "trainer/train/batch_source.h"
#include "trainer/train/events.h"
#include "trainer/train/train_backend.h"
#include "trainer/train/train_config.h"

namespace dyt {

struct StepStats {
  int64_t step = 0;      // 1-based optimizer step just completed
  double loss = 0;       // mean over the step's micro-batches
  double grad_norm = 0;  // before clipping
  float lr = 0;
  double seconds = 0;
  double tokens_per_s = 0;
  bool abandoned = false;  // TrainStep stopped between micro-batches; nothing was updated
};

// How Run() ended.
enum class RunOutcome {
  kFinished,  // reached train.steps
  kStopped,   // a stop signal arrived; a checkpoint was saved when checkpoint.dir is set
  kPaused,    // reached train.stop_at_step; a checkpoint was saved when checkpoint.dir is set
  // a later scheduler attempt of the job claimed checkpoint.dir (attempt_fence.h): this one
  // stopped without saving, at its start or within a step and a few seconds of the claim
  kSuperseded,
};

// Data parallelism: with a communicator of world size W, every rank reads its own slice of the
// data, gradients are averaged across ranks (in buckets) before clipping and AdamW, and
// parameters are broadcast from rank 0 at start and after a resume, so the ranks start and stay
// bit-identical (the all-reduce gives every rank the same bits). With train.zero1 the AdamW
// moments are sharded. Only rank 0 writes events and checkpoints; checkpoints hold the full
// (gathered) optimizer state, so a run can resume on a different number of ranks.
class Trainer {
 public:
  // Builds the model (initialised from train.seed), optimizer and data source. `events` may
  // be null; `comm` may be null (one process). Both must outlive the trainer.
  static StatusOr<std::unique_ptr<Trainer>> Create(const TrainConfig& config, EventWriter* events,
                                                   dist::Communicator* comm = nullptr);

  // Restores model, optimizer, data position and RNG from a checkpoint of the same model
  // config. `resume` is "auto" (the newest good checkpoint in checkpoint.dir; a fresh start
  // when there is none) or a checkpoint directory. Skipped corrupt checkpoints are logged and
  // reported as "checkpoint_skipped" events. Collective: with "auto", rank 0 (the rank that
  // writes checkpoints) picks the step and every other rank loads that same step from its own
  // checkpoint.dir; then the ranks vote, so they all resume from one step or all fail (a rank
  // that restored while another started fresh would pair unlike collectives and hang).
  // "none" (or ""): a fresh start, refused (INVALID_ARGUMENT) when checkpoint.dir already holds
  // step directories of an earlier run.
  Status Resume(const std::string& resume);

  // One optimizer step (collective across ranks). With `stop`, a stop requested on any rank
  // between two micro-batches ends it early: the data position goes back to the step's start,
  // nothing is updated, and the stats say `abandoned` (step: the last whole step).
  StatusOr<StepStats> TrainStep(const ShutdownSignal* stop = nullptr);
  // Mean validation loss over up to train.eval_batches fixed batches.
  StatusOr<double> Evaluate();
  // Trains until train.steps, logging, evaluating and checkpointing as configured. On a stop
  // request it finishes the current step, saves a checkpoint and returns kStopped.
  StatusOr<RunOutcome> Run(const ShutdownSignal* stop);
  // Writes a checkpoint of the current state into checkpoint.dir and applies retention.
  Status SaveCheckpoint();

  // Where the math runs (train.device): CpuBackend or CudaBackend.
  TrainBackend& backend() { return *backend_; }
  int64_t step() const { return backend_->step(); }
  const TrainConfig& config() const { return config_; }
  int rank() const { return comm_ ? comm_->rank() : 0; }
  int world_size() const { return comm_ ? comm_->world_size() : 1; }
  // Tokens one optimizer step consumes, all ranks together.
  int64_t tokens_per_step() const { return config_.tokens_per_step() * world_size(); }

 private:
  Trainer(const TrainConfig& config, EventWriter* events, dist::Communicator* comm);
  void Log(const StepStats& s);
  void Emit(nlohmann::json event);       // rank 0 only
  StatusOr<CheckpointState> Snapshot();  // collective with ZeRO-1 (gathers the moments)
  // Resume("none"), or a resume of `foreign` (another store's checkpoint): checkpoint.dir must
  // hold no checkpoint. Collective.
  Status RefuseUsedStore(const std::string& foreign = "");
  // Whether any rank was asked to stop, or rank 0 found this attempt superseded (collective;
  // logs the first time it is so; superseded_ tells which).
  StatusOr<bool> StopAgreed(const ShutdownSignal* stop);
  // Rank 0: Superseded(), asked at most every few seconds; true ever after once it was.
  bool SupersededLately();
  Status Restore(const CheckpointState& state);
  // Rank 0 of a scheduler attempt: claims checkpoint.dir for it (the first call) and says
  // whether a later attempt has claimed it since (then this one must not write there).
  bool Superseded();
  // `loaded` into `state` when this run can continue it; else why not: INVALID_ARGUMENT when
  // the config cannot continue an intact checkpoint (another model, format version or
  // tokenizer), the load's own error otherwise.
  Status CheckContinues(StatusOr<CheckpointState> loaded, CheckpointState* state) const;
  // What this run takes from checkpoint.init_from: everything, or the weights alone.
  CheckpointUse InitUse() const {
    return config_.checkpoint.init_weights_only ? CheckpointUse::kWeights : CheckpointUse::kResume;
  }
  // Sum of `value` over ranks (identity for one process).
  StatusOr<double> SumOverRanks(double value);
  // Rank 0's `value` on every rank (identity for one process).
  StatusOr<int64_t> BroadcastFromRank0(int64_t value);

  TrainConfig config_;
  EventWriter* events_;
  dist::Communicator* comm_;
  std::unique_ptr<TrainBackend> backend_;
  std::unique_ptr<BatchSource> data_;
  std::vector<int32_t> inputs_, targets_;
  bool warned_slow_step_ = false;  // Run: a step took longer than a stopper may wait
  bool stop_logged_ = false;
  // Training tokens of every step so far, all ranks (a resumed run may use another batch).
  int64_t tokens_seen_ = 0;
  double last_loss_ = NAN, last_val_loss_ = NAN;
  int64_t last_saved_step_ = -1;
  bool claimed_ = false;     // Superseded() claimed the store
  bool superseded_ = false;  // the ranks agreed that a later attempt took over (StopAgreed)
  std::chrono::steady_clock::time_point last_fence_check_{};  // SupersededLately
  std::chrono::steady_clock::time_point last_save_time_ = std::chrono::steady_clock::now();
};

}  // namespace dyt
