// What data a training run reads: the `data:` section of a job config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/yaml_config.h"

namespace dyt {

struct DataConfig {
  // Token shards, read in this order as one stream. An entry containing *, ? or [ is a glob
  // pattern, expanded in sorted order (it must match at least one file).
  std::vector<std::string> train_paths;
  // Validation shards. When empty, `val_fraction` may hold out part of the training tokens.
  std::vector<std::string> val_paths;
  // Optional sentencepiece model. When set, every shard that records a tokenizer id must
  // record this file's id (the SHA-256 of its bytes).
  std::string tokenizer_path;
  // "auto" (dyt or llm.c, by magic), "dyt", "llmc", "raw_u16" (nanoGPT .bin), "raw_u32".
  std::string format = "auto";
  // Seeds the per-epoch shuffles of the training windows.
  uint64_t seed = 1234;
  // With no val_paths: hold out the LAST ceil(val_fraction * tokens) training tokens as the
  // validation set (0 = no validation). Must be in [0, 1); not allowed with val_paths.
  double val_fraction = 0;
  // When not empty, every data file (train and val shards after glob expansion, the tokenizer)
  // must resolve, symlinks followed, under one of these directories. The worker sets it from
  // the scheduler's --data-root, so the check happens where the files are opened.
  std::vector<std::string> roots;
  // Cap on the number of validation windows (all ranks together), spread evenly over the
  // validation tokens; 0 = every window.
  int64_t max_val_windows = 0;
};

// Reads a DataConfig from a YAML map whose keys are the field names above (train_paths and
// val_paths take a string or a list of strings), rejecting unknown keys.
Status ReadDataConfig(YamlReader& reader, DataConfig& out);

}  // namespace dyt
