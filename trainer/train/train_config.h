// The whole configuration of a training run, as read from `dyt-train --config job.yaml`.
//
//   model:     preset and overrides (trainer/model/config.h)
//   data:      token shards, or `synthetic: true` for random tokens (tests, benchmarks)
//   train:     steps, micro-batch size, gradient accumulation, sequence length, seed, threads,
//              logging and evaluation cadence
//   optimizer: AdamW, clipping, learning-rate schedule
//   output:    run directory
// Every field is optional except where noted; unknown fields are rejected by name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/data_config.h"
#include "trainer/model/config.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/lr_schedule.h"

namespace dyt {

struct DataSection {
  bool synthetic = false;     // random tokens from the seed; no files
  bool repeat_batch = false;  // synthetic only: the same batch every step (memorization)
  DataConfig shards;          // token shards (trainer/data/data_config.h); seed used by both
};

// Where the training math runs (trainer/train/train_backend.h).
enum class TrainDevice { kCpu, kCuda };
const char* TrainDeviceName(TrainDevice d);

// The most OpenMP threads a config may ask for (libgomp crashes creating 100,000).
inline constexpr int kMaxThreads = 1024;

struct TrainSection {
  int64_t steps = 100;
  int batch_size = 8;  // sequences per micro-batch
  int grad_accum = 1;  // micro-batches per optimizer step
  int seq_len = 0;     // 0: model.max_seq_len
  uint64_t seed = 1;   // parameter init
  int threads = 0;     // OpenMP threads; 0: all cores; at most kMaxThreads
  int log_every = 10;
  int eval_every = 0;    // 0: no periodic evaluation
  int eval_batches = 8;  // validation batches per evaluation
  // Data parallel only: shard the AdamW moments across ranks (ZeRO stage 1): reduce-scatter
  // the gradients, update this rank's shard, all-gather the parameters.
  bool zero1 = false;
  // cpu: fp32 on the host (OpenMP threads). cuda: bf16 mixed precision on the GPU this rank
  // is given (CUDA_VISIBLE_DEVICES / DYT_LOCAL_RANK), NCCL between ranks.
  TrainDevice device = TrainDevice::kCpu;
  // cuda only: keep only each block's input and recompute the block's activations in the
  // backward pass (about a third more compute, a fraction of the activation memory).
  bool recompute = false;
  // false (cuda only): allow the faster kernels whose float sums run in a varying order - the
  // attention backward's dq by atomics (one pass fewer of attention work). Losses then differ
  // from run to run in the last bits. true: every run of the same config is bit-identical.
  bool deterministic = true;
  // Not from YAML: dyt-train --stop-at-step K ends this run cleanly after step K (with a
  // checkpoint) without changing train.steps, so the schedule is the same as a full run.
  int64_t stop_at_step = 0;
};

struct OptimSection {
  AdamWConfig adamw;
  float grad_clip = 1.0f;  // 0 disables clipping
  LrSchedule schedule;     // total_steps defaults to train.steps
};

// When and where checkpoints are written (docs/checkpoints.md). A checkpoint is always
// written at the end of training and on SIGTERM/SIGINT when `dir` is set.
struct CheckpointSection {
  std::string dir;               // the artifact store; default <output.dir>/checkpoints
  int64_t every_steps = 0;       // 0: off
  double every_minutes = 0;      // 0: off
  int keep_last = 3;             // retention: newest N ...
  int64_t keep_every_steps = 0;  // ... plus every step divisible by this (0: none)
  // A checkpoint directory (step-XXXXXXXX) that `--resume auto` continues while `dir` holds no
  // checkpoint: a new run going on from another run's point (the scheduler's init_from_job).
  std::string init_from;
  // With init_from: take only its model weights (fine-tuning, or a new schedule on new data):
  // the run starts at step 0 with fresh optimizer state, learning-rate schedule and data
  // position. Fields that shape no tensor (max_seq_len, rope_theta, norm_eps) may differ.
  bool init_weights_only = false;
};

struct TrainConfig {
  ModelConfig model;
  DataSection data;
  TrainSection train;
  OptimSection optim;
  CheckpointSection checkpoint;
  std::string output_dir;   // empty: no files written
  std::string job_id;       // recorded in checkpoints; set by the worker
  int job_attempt = 0;      // the scheduler's attempt number, recorded in checkpoints; ditto
  int local_rank = 0;       // this rank's index on its machine (DYT_LOCAL_RANK): picks the GPU
  std::string source_yaml;  // the config text as given, kept in every checkpoint

  int64_t tokens_per_step() const {
    return int64_t(train.batch_size) * train.grad_accum * train.seq_len;
  }
};

// Parses and validates a config; errors name the field ("train.batch_size: must be >= 1").
// `keep_source`: fill source_yaml with the tree written out (a check alone, like the
// scheduler's of every submission, skips that: writing YAML is most of the cost).
StatusOr<TrainConfig> ParseTrainConfig(const YAML::Node& root, bool keep_source = true);
StatusOr<TrainConfig> LoadTrainConfig(const std::string& path);

}  // namespace dyt
