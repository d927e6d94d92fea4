#include "trainer/cuda/launch_utils.h"

#include <array>
#include <mutex>

namespace dyt::cuda::detail {

const DeviceLimits& CurrentDeviceLimits() {
  constexpr int kMaxDevices = 64;
  static std::array<DeviceLimits, kMaxDevices> limits;
  static std::array<bool, kMaxDevices> known{};
  static std::mutex mu;
  static const DeviceLimits kNoDevice;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    cudaGetLastError();
    return kNoDevice;
  }
  std::lock_guard<std::mutex> lock(mu);
  if (!known[device]) {
    DeviceLimits d;
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device) == cudaSuccess) {
      d.sms = std::max(1, v);
    }
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxThreadsPerMultiProcessor, device) == cudaSuccess) {
      d.max_threads_per_sm = std::max(32, v);
    }
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxBlocksPerMultiprocessor, device) == cudaSuccess) {
      d.max_blocks_per_sm = std::max(1, v);
    }
    cudaGetLastError();
    limits[device] = d;
    known[device] = true;
  }
  return limits[device];
}

}  // namespace dyt::cuda::detail
