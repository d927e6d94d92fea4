// JobSpec validation: what SubmitJob checks before anything is stored (docs/scheduler.md).
//
// Every rule answers INVALID_ARGUMENT naming the field path and the rule, with the value when
// it helps: "spec.train.batch_size: must be >= 1 (got 0)". The first violated rule is
// reported. Zero in an optional numeric field means "the default" (proto3), so such fields
// are checked for range only; fields without a usable default (name, owner, model.preset,
// resources.kind, train.steps, train.batch_size, resources.ranks) are required.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/job_spec_limits.h"
#include "common/status.h"
#include "dyt/v1/job.pb.h"

namespace dyt {

struct JobSpecValidatorOptions {
  // Absolute directories every data path (train_paths, val_paths, tokenizer_path) must lie
  // under, also once symlinks are resolved (realpath). Empty: any absolute path is accepted.
  std::vector<std::string> data_roots;
};

class JobSpecValidator {
 public:
  explicit JobSpecValidator(JobSpecValidatorOptions options = {});

  // OK, or INVALID_ARGUMENT "spec.<field>: <rule> (got <value>)" for the first violation.
  Status Validate(const v1::JobSpec& spec) const;

  // "client_request_id: at most 128 printable ASCII characters"; empty is allowed.
  static Status ValidateClientRequestId(const std::string& id);

 private:
  Status ValidatePath(const std::string& field, const std::string& path) const;

  JobSpecValidatorOptions options_;
  std::vector<std::string> resolved_roots_;  // data_roots with symlinks resolved
};

}  // namespace dyt
