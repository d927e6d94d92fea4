// Host-side helpers for the kernel launchers: argument checks that name the function and the
// argument, and compile-time dispatch of runtime flags (internal to trainer/cuda).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "common/status.h"

namespace dyt::cuda::detail {

// Limits of the current device, cached per device. Without a usable device: 1 SM, Hopper's
// per-SM limits (launches then fail with the CUDA error, not here).
struct DeviceLimits {
  int sms = 1;
  int max_threads_per_sm = 2048;
  int max_blocks_per_sm = 32;
};
const DeviceLimits& CurrentDeviceLimits();

// Blocks of `threads` threads the current device can hold at once by thread and block count
// alone: the upper bound of ResidentBlocks, used to size scratch buffers.
inline int64_t MaxResidentBlocks(int threads) {
  const DeviceLimits& d = CurrentDeviceLimits();
  const int per_sm = std::max(1, std::min(d.max_blocks_per_sm, d.max_threads_per_sm / threads));
  return int64_t{per_sm} * d.sms;
}

// Blocks of `kernel` (launched with `threads` threads and `smem` bytes of dynamic shared
// memory) the current device holds at once, by the occupancy calculator; never more than
// MaxResidentBlocks(threads), at least one per SM.
template <typename Kernel>
int64_t ResidentBlocks(Kernel kernel, int threads, size_t smem) {
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem) !=
      cudaSuccess) {
    cudaGetLastError();  // not sticky; the launch reports any real problem
    per_sm = 1;
  }
  const int64_t blocks = int64_t{std::max(1, per_sm)} * CurrentDeviceLimits().sms;
  return std::min(blocks, MaxResidentBlocks(threads));
}

inline Status CheckShape(const char* fn, int64_t N, int D) {
  if (N < 0) return InvalidArgument(std::string(fn) + ": N=" + std::to_string(N) + " must be >= 0");
  if (D <= 0) return InvalidArgument(std::string(fn) + ": D=" + std::to_string(D) + " must be > 0");
  return Status::Ok();
}

inline Status CheckNotNull(const char* fn, const char* name, const void* p) {
  if (p == nullptr) return InvalidArgument(std::string(fn) + ": " + name + " is null");
  return Status::Ok();
}

inline Status CheckScratch(const char* fn, const void* scratch, size_t have, size_t need) {
  if (need > 0 && (scratch == nullptr || have < need)) {
    return InvalidArgument(std::string(fn) + ": scratch holds " + std::to_string(have) +
                           " bytes, needs " + std::to_string(need));
  }
  if ((reinterpret_cast<uintptr_t>(scratch) & 3u) != 0) {
    return InvalidArgument(std::string(fn) + ": scratch must be 4-byte aligned");
  }
  return Status::Ok();
}

// Calls f(std::true_type{}) or f(std::false_type{}): turns a runtime flag into a template
// argument (decltype(flag)::value inside f).
template <typename F>
void WithBool(bool b, F&& f) {
  if (b) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

}  // namespace dyt::cuda::detail
