// JobSpec -> the YAML config dyt-train reads (trainer/train/train_config.h).
//
// Every JobSpec field that is set (non-zero, non-empty, or present for the optional ones)
// becomes the matching trainer field; unset fields keep the trainer's defaults (the model
// preset's values, train_config.h's defaults). The worker adds what the assignment decides:
// checkpoint.dir (the job's artifact directory, shared by every attempt so that --resume auto
// finds the latest checkpoint), output.dir (under the worker's --work-dir) and job_id, plus
// train.threads (the rank's CPU slots) for cpu jobs.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "dyt/v1/job.pb.h"

namespace dyt::worker {

struct JobPaths {
  std::string job_id;
  int attempt = 0;                      // job_attempt; 0: not written
  std::string checkpoint_dir;           // required
  std::string output_dir;               // required
  int threads = 0;                      // train.threads; 0: all cores
  std::vector<std::string> data_roots;  // data.roots; empty: not written
  std::string init_checkpoint;          // checkpoint.init_from; empty: not written
};

// The config as a YAML tree, or INVALID_ARGUMENT naming the field when the spec cannot be
// expressed (e.g. a missing checkpoint dir). Does not validate the trainer's rules: see
// ValidateTrainConfig.
StatusOr<YAML::Node> TrainConfigFromJobSpec(const v1::JobSpec& spec, const JobPaths& paths);

// The same as YAML text (what the worker writes for dyt-train).
StatusOr<std::string> TrainYamlFromJobSpec(const v1::JobSpec& spec, const JobPaths& paths);

// The trainer's own ParseTrainConfig on a tree (the scheduler checks every submission with it,
// without writing and parsing the text: that cost 3x its SubmitJob throughput).
Status ValidateTrainConfig(const YAML::Node& root);

// Parses `yaml` with the trainer's own ParseTrainConfig: OK, or its INVALID_ARGUMENT naming the
// field ("train.batch_size: must be >= 1").
Status ValidateTrainYaml(const std::string& yaml);

}  // namespace dyt::worker
