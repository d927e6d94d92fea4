// Host emulation of the CUDA runtime calls the CUDA training backend makes (tests/cuda/emu/
// README.md says why it exists): "device" memory is host memory, every copy and memset runs
// immediately, streams are in-order by construction (everything is synchronous), and an event
// records the host clock, so PhaseProfiler's timings are the emulated step's host time.
//
// It defines the runtime's C entry points that cuda_runtime_api.h declares, and these take
// precedence over the real static runtime that is also on the test binary's link line (pulled
// in through dyt_train's CUDA dependencies). A call not defined here would bind to the real
// runtime, which finds no GPU on a machine without one: the tests would then fail or skip,
// which is how a new runtime call in the backend is noticed (EmulationTest checks the binding).
#include "tests/cuda/emu/cuda_runtime_emu.h"

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// An emulated event: the host time of its last record.
struct EmuEvent {
  std::chrono::steady_clock::time_point at{};
  bool recorded = false;
};

// An emulated stream: nothing to hold (work runs when enqueued), but a distinct address.
struct EmuStream {
  int unused = 0;
};

// The calling thread's pending launch error (each host thread is its own "device context").
thread_local cudaError_t tls_last_error = cudaSuccess;

// Allocations are [guard | bytes | guard to the next 256 | guard], the guards 256 bytes of
// 0xFF (NaN in fp32 and bf16) with the size in the first 8 bytes: a kernel reading past either
// end reads NaN, which its test sees, and one writing past an end is reported when the memory
// is freed (CheckGuards), like compute-sanitizer's memcheck would on a GPU.
constexpr size_t kGuard = 256;

size_t Rounded(size_t bytes) { return (bytes + kGuard - 1) / kGuard * kGuard; }

// 256-byte alignment, as cudaMalloc gives (the kernels' and cuBLASLt's fast paths rely on it).
void* AlignedAlloc(size_t bytes) {
  auto* base =
      static_cast<unsigned char*>(std::aligned_alloc(kGuard, kGuard + Rounded(bytes) + kGuard));
  if (base == nullptr) return nullptr;
  std::memset(base, 0xFF, kGuard + Rounded(bytes) + kGuard);
  std::memcpy(base, &bytes, sizeof(bytes));
  return base + kGuard;
}

void CheckGuards(const unsigned char* p) {
  const unsigned char* base = p - kGuard;
  size_t bytes = 0;
  std::memcpy(&bytes, base, sizeof(bytes));
  auto first_changed = [](const unsigned char* from, size_t n) -> int64_t {
    for (size_t i = 0; i < n; ++i) {
      if (from[i] != 0xFF) return static_cast<int64_t>(i);
    }
    return -1;
  };
  const int64_t before = first_changed(base + sizeof(bytes), kGuard - sizeof(bytes));
  const size_t after_n = Rounded(bytes) - bytes + kGuard;
  const int64_t after = first_changed(p + bytes, after_n);
  if (before >= 0 || after >= 0) {
    std::fprintf(stderr,
                 "CUDA emulation: a write outside a cudaMalloc'd buffer of %zu bytes, at byte %lld "
                 "(found at cudaFree)\n",
                 bytes,
                 before >= 0 ? static_cast<long long>(before) - static_cast<long long>(kGuard) +
                                   static_cast<long long>(sizeof(bytes))
                             : static_cast<long long>(bytes) + after);
    std::abort();
  }
}

}  // namespace

namespace dyt::emu {
void RecordLaunchError(cudaError_t err) { tls_last_error = err; }
}  // namespace dyt::emu

extern "C" {

// Four devices, so the data-parallel tests (one GPU per rank) run too; all are the same host.
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 4;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  std::memset(prop, 0, sizeof(*prop));
  std::strncpy(prop->name, "host emulation (tests/cuda/emu)", sizeof(prop->name) - 1);
  prop->major = 9;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetLastError() {
  const cudaError_t err = tls_last_error;
  tls_last_error = cudaSuccess;
  return err;
}
cudaError_t cudaPeekAtLastError() { return tls_last_error; }
const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    default:
      return "cudaErrorEmulated";
  }
}
const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    default:
      return "error in the host emulation";
  }
}

// Fresh "device" memory is filled with 0xFF bytes (NaN as floats and bf16), as no GPU would
// zero it either: code that reads memory it never wrote shows up as NaN in the results.
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = AlignedAlloc(bytes);
  return *p != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  CheckGuards(static_cast<unsigned char*>(p));
  std::free(static_cast<unsigned char*>(p) - kGuard);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = AlignedAlloc(bytes);
  return *p != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *free_bytes = size_t{1} << 34;
  *total = size_t{1} << 34;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes > 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes > 0) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(p, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = reinterpret_cast<cudaStream_t>(new EmuStream);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<EmuStream*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }  // nothing is ever pending
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new EmuEvent);
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<EmuEvent*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  auto* ev = reinterpret_cast<EmuEvent*>(e);
  ev->at = std::chrono::steady_clock::now();
  ev->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  const auto* a = reinterpret_cast<EmuEvent*>(start);
  const auto* b = reinterpret_cast<EmuEvent*>(end);
  if (!a->recorded || !b->recorded) return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}

}  // extern "C"
