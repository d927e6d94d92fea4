// The limits of a JobSpec: the scheduler's validator enforces them (scheduler/
// job_spec_validator.h); dytctl checks the ones it can before sending a spec.
#pragma once

#include <cstddef>

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

}  // namespace dyt
