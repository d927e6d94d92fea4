#include "trainer/optim/lr_schedule.h"

#include <cmath>

namespace dyt {

float LrSchedule::At(int64_t step) const {
  if (step < warmup_steps) return lr * float(step + 1) / float(warmup_steps);
  if (step >= total_steps) return min_lr;
  const int64_t span = total_steps - warmup_steps;
  if (span <= 0) return lr;
  const double progress = double(step - warmup_steps) / double(span);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return float(min_lr + (lr - min_lr) * cosine);
}

}  // namespace dyt
