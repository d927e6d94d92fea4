// The limits of a JobSpec: the scheduler's validator enforces them (scheduler/
// job_spec_validator.h); dytctl checks the ones it can before sending a spec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dyt {

struct JobSpecLimits {
  static constexpr int kMaxNameLength = 128;
  static constexpr int kMinPriority = 0;
  static constexpr int kMaxPriority = 1000;
  static constexpr int kMaxRestarts = 100;
  static constexpr int kMaxRanks = 4096;
  static constexpr int kMaxSlotsPerRank = 64;
  static constexpr int kMaxPaths = 100000;
  static constexpr int kMaxPathLength = 4096;
  static constexpr int kMaxClientRequestIdLength = 128;
  static constexpr int kMaxReasonLength = 1024;
  // A serialized JobSpec larger than this is refused (a spec is a few KiB at most).
  static constexpr size_t kMaxSpecBytes = 1 << 20;
  // dytctl reads no job spec file larger than this (comments included).
  static constexpr size_t kMaxSpecFileBytes = 16 << 20;
};

// An integer field of a JobSpec with a fixed range, named by its path in the spec
// ("train.batch_size"). The validator enforces these ranges; dytctl names them when a number
// in a spec file does not even fit the field's type.
struct JobSpecIntegerRange {
  std::string_view field;
  int64_t lo;
  int64_t hi;
};

inline constexpr JobSpecIntegerRange kJobSpecIntegerRanges[] = {
    {"model.vocab_size", 0, 1 << 22},
    {"model.dim", 0, 65536},
    {"model.n_layers", 0, 1024},
    {"model.n_heads", 0, 1024},
    {"model.n_kv_heads", 0, 1024},
    {"model.ffn_dim", 0, 1 << 20},
    {"model.max_seq_len", 0, 1 << 20},
    {"model.multiple_of", 0, 1 << 16},
    {"data.max_val_windows", 0, int64_t{1} << 40},
    {"optimizer.decay_steps", 0, int64_t{1} << 40},
    {"train.steps", 1, int64_t{1} << 40},
    {"train.batch_size", 1, 1 << 20},
    {"train.grad_accum", 0, 1 << 16},
    {"train.seq_len", 0, 1 << 20},
    {"resources.ranks", 1, JobSpecLimits::kMaxRanks},
    {"resources.slots_per_rank", 0, JobSpecLimits::kMaxSlotsPerRank},
    {"priority", JobSpecLimits::kMinPriority, JobSpecLimits::kMaxPriority},
    {"max_restarts", 0, JobSpecLimits::kMaxRestarts},
    {"stall_timeout_s", 0, 7 * 86400},
    {"time_limit_s", 0, 366 * 86400},
    {"init_from_step", 0, int64_t{1} << 40},
};

// The fixed range of `field` ("model.dim"), or nullptr when it has none.
constexpr const JobSpecIntegerRange* FindJobSpecIntegerRange(std::string_view field) {
  for (const auto& range : kJobSpecIntegerRanges) {
    if (range.field == field) return &range;
  }
  return nullptr;
}

}  // namespace dyt
