// Learning-rate schedule: linear warm-up from lr/warmup to lr over `warmup_steps`, then a
// cosine decay to `min_lr` at `total_steps` (and min_lr after it).
#pragma once

#include <cstdint>

namespace dyt {

struct LrSchedule {
  float lr = 3e-4f;
  float min_lr = 3e-5f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // Learning rate for the 0-based optimizer step `step`.
  float At(int64_t step) const;
};

}  // namespace dyt
