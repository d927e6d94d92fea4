// Deterministic block-wide fp64 sums shared by the reduction, embedding and cross-entropy
// kernels (internal to trainer/cuda). Same scheme as detail::BlockSum in kernel_utils.cuh: a
// fixed butterfly inside each warp, then every thread adds the warp sums in warp order, so
// every thread gets the same bits and the result depends only on the block size.
#pragma once

#include <cuda_runtime.h>

namespace dyt::cuda::detail {

__device__ __forceinline__ double WarpSumDouble(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over a 1-D block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
// `smem` holds at least 32 doubles. Contains two __syncthreads(): every thread must call it.
__device__ __forceinline__ double BlockSumDouble(double v, double* smem) {
  const int nwarps = blockDim.x / 32;
  v = WarpSumDouble(v);
  if ((threadIdx.x & 31) == 0) smem[threadIdx.x >> 5] = v;
  __syncthreads();
  double s = 0.0;
  for (int w = 0; w < nwarps; ++w) s += smem[w];
  __syncthreads();
  return s;
}

}  // namespace dyt::cuda::detail
