// Everything a training run needs to continue exactly where it stopped, in memory.
//
// The checkpoint store (checkpoint_writer.h, checkpoint_reader.h, checkpoint_store.h) turns
// this into a directory on disk and back. Resuming is bit-exact on CPU only if every field
// here round-trips exactly, so the store keeps floats as raw bytes and integers as integers.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/loader.h"

namespace dyt {

struct CheckpointState {
  // ModelConfigToJson() of the model. LoadCheckpoint returns it in that canonical form.
  std::string model_config_json;
  // The full job config text (YAML) the run was started with, kept verbatim so a checkpoint
  // says how it was produced.
  std::string train_config_yaml;

  // Flat fp32 buffers in ParamLayout order, each exactly ParamLayout::total() floats. The
  // layout pads every tensor to 16 floats; padding is not stored and loads as zero.
  std::vector<float> params;
  std::vector<float> adam_m;
  std::vector<float> adam_v;
  int64_t adam_step = 0;  // AdamW::step(): drives the bias corrections

  int64_t step = 0;         // optimizer steps done
  int64_t tokens_seen = 0;  // training tokens consumed, all ranks together
  LoaderPosition loader;    // rank 0's position (equal on all ranks, see loader.h)
  uint64_t rng_state = 0;   // the trainer's Rng state (synthetic data etc.)

  // Facts about the run, for humans, the scheduler and the export; not needed to resume.
  struct Meta {
    std::string job_id;
    int attempt = 0;          // the scheduler's attempt of the job that saved it (0: none)
    double train_loss = NAN;  // NaN when unknown
    double val_loss = NAN;    // NaN when no validation ran
    double unix_time = 0;     // seconds since the epoch, when the checkpoint was taken
    std::string code_version;
    int world_size = 1;
    // SHA-256 (hex) of the tokenizer model that encoded the training data; "" when unknown
    // (synthetic data, shards that record none, checkpoints from before it was kept).
    std::string tokenizer_id;
  } meta;
};

}  // namespace dyt
