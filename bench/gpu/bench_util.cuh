// Helpers shared by the GPU benchmarks (dyt_layer_bench.cu, dyt_fwd_sweep.cu): fatal CUDA
// checks, random non-zero device data, timing with CUDA events, the copy-bandwidth ceiling.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/cuda/cuda_status.h"

namespace dyt::bench {

#define BENCH_CUDA(expr)                                                       \
  do {                                                                         \
    const cudaError_t bench_err_ = (expr);                                     \
    if (bench_err_ != cudaSuccess) {                                           \
      std::fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cudaGetErrorString(bench_err_));                            \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)

// Random non-zero values: magnitude in [0.05, 1] (times `scale`), random sign. A hash of the
// index, so filling is one pass and reproducible.
template <typename T>
__global__ void FillRandom(T* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 0x9E3779B1u ^ seed ^ static_cast<uint32_t>(i >> 32);
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    const float mag = 0.05f + 0.95f * static_cast<float>(h >> 8) * (1.f / 16777216.f);
    const float v = (h & 1u) ? -mag * scale : mag * scale;
    if constexpr (sizeof(T) == 2) {
      p[i] = __float2bfloat16_rn(v);
    } else {
      p[i] = v;
    }
  }
}

template <typename T>
T* Alloc(size_t n, uint32_t seed, float scale = 1.f) {
  T* p = nullptr;
  BENCH_CUDA(cudaMalloc(&p, n * sizeof(T)));
  FillRandom<T><<<1024, 256>>>(p, n, seed, scale);
  BENCH_CUDA(cudaGetLastError());
  return p;
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct Timing {
  std::vector<double> per_launch;  // ms per launch, one entry per batch
  std::string error;               // the first failed launch's status
};

// Times fn(i) (i = launch counter, for rotating input sets): `batches` batches of `per_batch`
// launches each between two CUDA events, after one warm-up batch.
inline Timing TimeBatches(int batches, int per_batch, const std::function<Status(int)>& fn) {
  Timing t;
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  int launch = 0;
  for (int b = -1; b < batches; ++b) {
    BENCH_CUDA(cudaEventRecord(start));
    for (int k = 0; k < per_batch; ++k) {
      const Status st = fn(launch++);
      if (!st.ok()) {
        t.error = st.ToString();
        b = batches;
        break;
      }
    }
    BENCH_CUDA(cudaEventRecord(stop));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    if (b >= 0 && t.error.empty()) t.per_launch.push_back(ms / per_batch);
  }
  BENCH_CUDA(cudaGetLastError());
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  return t;
}

// Device-to-device copy bandwidth (bytes read + written per second, GB/s) of a 2 GiB
// cudaMemcpy: the ceiling every memory-bound kernel is measured against. Also returns the
// median ms through *ms when not null.
inline double CopyBandwidthGBs(int batches, double* ms = nullptr) {
  const size_t bytes = size_t{2} << 30;
  void* src = nullptr;
  void* dst = nullptr;
  BENCH_CUDA(cudaMalloc(&src, bytes));
  BENCH_CUDA(cudaMalloc(&dst, bytes));
  FillRandom<float><<<1024, 256>>>(static_cast<float*>(src), bytes / 4, 7u, 1.f);
  BENCH_CUDA(cudaGetLastError());
  const Timing t = TimeBatches(batches, 2, [&](int) {
    return cuda::CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice),
                            "cudaMemcpyAsync");
  });
  BENCH_CUDA(cudaFree(src));
  BENCH_CUDA(cudaFree(dst));
  const double m = Median(t.per_launch);
  if (ms != nullptr) *ms = m;
  return m > 0 ? 2.0 * bytes / (m * 1e-3) / 1e9 : 0;
}

}  // namespace dyt::bench
