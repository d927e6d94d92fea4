// Deterministic fp64 sums (reduce_kernels.h). Two launches:
//  1. ReducePartialsKernel: P blocks (P depends only on n: at most kMaxBlocks, each slice at
//     least kMinSlice elements); block b sums the contiguous slice [b * L, min(n, (b + 1) * L))
//     with L a multiple of 4, so a 16-byte aligned x keeps every slice 16-byte aligned for the
//     float4 path. Thread t takes the slice's vectors t, t + 256, ...; the block's 256
//     per-thread sums are added by the fixed BlockSumDouble; the result goes to partials[b].
//  2. SumPartialsKernel: one block adds partials[0 .. P) in a fixed order and writes *out.
// The order of every addition depends only on n and on whether x is 16-byte aligned.
#include <algorithm>
#include <cstdint>
#include <string>

#include "trainer/cuda/block_reduce.cuh"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"
#include "trainer/cuda/reduce_kernels.h"

namespace dyt::cuda {
namespace {

using detail::CeilDiv;

constexpr int kReduceThreads = 256;
constexpr int64_t kMinSlice = 8192;
constexpr int64_t kMaxBlocks = 1024;

// The split of n elements into P slices of L elements (the last one shorter). n > 0.
struct Split {
  int64_t blocks = 0;
  int64_t slice = 0;
};

Split SplitFor(int64_t n) {
  Split s;
  if (n <= 0) return s;
  const int64_t p0 = std::min(CeilDiv(n, kMinSlice), kMaxBlocks);
  s.slice = CeilDiv(CeilDiv(n, p0), 4) * 4;
  s.blocks = CeilDiv(n, s.slice);  // <= p0, every block has at least one element
  return s;
}

template <bool kSquares>
__device__ __forceinline__ double Term(float v) {
  const double d = static_cast<double>(v);
  if constexpr (kSquares) {
    return d * d;  // exact: a float's square fits a double
  } else {
    return d;
  }
}

template <bool kSquares, bool kVec4>
__global__ void __launch_bounds__(kReduceThreads)
    ReducePartialsKernel(double* __restrict__ partials, const float* __restrict__ x, int64_t n,
                         int64_t slice) {
  __shared__ double smem[32];
  const int64_t lo = int64_t{blockIdx.x} * slice;
  const int64_t hi = lo + slice < n ? lo + slice : n;
  double acc = 0.0;
  int64_t scalar_from = lo;
  if constexpr (kVec4) {
    const int64_t n_vec = (hi - lo) / 4;
    const float4* xv = reinterpret_cast<const float4*>(x + lo);
#pragma unroll 4
    for (int64_t j = threadIdx.x; j < n_vec; j += blockDim.x) {
      const float4 f = __ldcs(xv + j);
      acc += Term<kSquares>(f.x);
      acc += Term<kSquares>(f.y);
      acc += Term<kSquares>(f.z);
      acc += Term<kSquares>(f.w);
    }
    scalar_from = lo + n_vec * 4;
  }
  for (int64_t i = scalar_from + threadIdx.x; i < hi; i += blockDim.x) {
    acc += Term<kSquares>(x[i]);
  }
  const double s = detail::BlockSumDouble(acc, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void __launch_bounds__(kReduceThreads)
    SumPartialsKernel(double* __restrict__ out, const double* __restrict__ partials, int P) {
  __shared__ double smem[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < P; i += blockDim.x) acc += partials[i];
  const double s = detail::BlockSumDouble(acc, smem);
  if (threadIdx.x == 0) *out = s;
}

template <bool kSquares>
Status Reduce(const char* fn, double* out, const float* x, int64_t n, void* scratch,
              size_t scratch_bytes, cudaStream_t stream) {
  if (n < 0) return InvalidArgument(std::string(fn) + ": n=" + std::to_string(n) + " must be >= 0");
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "out", out));
  if (n > 0) DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "x", x));
  const size_t need = ReduceScratchBytes(n);
  DYT_RETURN_IF_ERROR(detail::CheckScratch(fn, scratch, scratch_bytes, need));
  if ((reinterpret_cast<uintptr_t>(scratch) & 7u) != 0) {
    return InvalidArgument(std::string(fn) + ": scratch must be 8-byte aligned");
  }
  const Split split = SplitFor(n);
  double* partials = static_cast<double*>(scratch);
  if (split.blocks > 0) {
    const unsigned grid = static_cast<unsigned>(split.blocks);
    auto* kernel = detail::Aligned16(x) ? ReducePartialsKernel<kSquares, true>
                                        : ReducePartialsKernel<kSquares, false>;
    DYT_LAUNCH(kernel, grid, kReduceThreads, 0, stream, partials, x, n, split.slice);
    DYT_RETURN_IF_ERROR(LaunchStatus("ReducePartialsKernel"));
  }
  DYT_LAUNCH(SumPartialsKernel, 1, kReduceThreads, 0, stream, out, partials,
             static_cast<int>(split.blocks));
  return LaunchStatus("SumPartialsKernel");
}

}  // namespace

size_t ReduceScratchBytes(int64_t n) {
  return static_cast<size_t>(SplitFor(n).blocks) * sizeof(double);
}

Status SumDevice(double* out, const float* x, int64_t n, void* scratch, size_t scratch_bytes,
                 cudaStream_t stream) {
  return Reduce<false>("SumDevice", out, x, n, scratch, scratch_bytes, stream);
}

Status SumSquaresDevice(double* out, const float* x, int64_t n, void* scratch, size_t scratch_bytes,
                        cudaStream_t stream) {
  return Reduce<true>("SumSquaresDevice", out, x, n, scratch, scratch_bytes, stream);
}

}  // namespace dyt::cuda
