#include "services/worker/devices.h"

#include <unistd.h>

#include <thread>

#ifdef DYT_WORKER_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace dyt::worker {

namespace {

int64_t HostMemory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

std::string CpuName() { return "cpu x" + std::to_string(std::thread::hardware_concurrency()); }

}  // namespace

StatusOr<Slots> DetectSlots(int cpu_slots) {
  if (cpu_slots < 0) return InvalidArgument("--cpu-slots: must be >= 0");
  if (cpu_slots > 0) {
    return Slots{"cpu", cpu_slots, HostMemory(), CpuName()};
  }
  std::string why = "this dyt-worker was built without CUDA";
#ifdef DYT_WORKER_WITH_CUDA
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count > 0) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
      return Slots{"gpu", count, static_cast<int64_t>(prop.totalGlobalMem), prop.name};
    }
  }
  why = err != cudaSuccess ? std::string("CUDA: ") + cudaGetErrorString(err)
                           : std::string("CUDA found no device");
#endif
  return FailedPrecondition("no slots to offer: no GPU (" + why +
                            ") and no --cpu-slots N; give --cpu-slots for a CPU worker");
}

}  // namespace dyt::worker
