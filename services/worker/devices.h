// What the worker offers: its slots, found at startup.
//
// cpu: --cpu-slots N slots, memory = the host's physical memory.
// gpu: the CUDA devices (count, the first device's name, its memory per slot), when the worker
// is built with CUDA (DYT_HAVE_CUDA); otherwise, or with no device, there are no GPUs.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace dyt::worker {

struct Slots {
  std::string kind;  // "cpu" | "gpu"
  int count = 0;
  int64_t memory_bytes = 0;
  std::string device_name;
};

// --cpu-slots > 0 wins; else the GPUs; FAILED_PRECONDITION naming both options when neither
// gives a slot.
StatusOr<Slots> DetectSlots(int cpu_slots);

}  // namespace dyt::worker
