// The second, deterministic stage of the parameter-gradient reductions: per-block partial sums
// (written by the backward kernels to a scratch buffer) are summed in a fixed order and added
// into the fp32 gradient buffers. No float atomics anywhere, so gradients are bit-identical
// from run to run.
#include "trainer/cuda/kernel_utils.cuh"

namespace dyt::cuda::detail {

namespace {

constexpr int kThreads = 256;

// Blocks [0, col_blocks) sum columns; the block after them (when dscalar is set) sums the
// scalar partials.
__global__ void __launch_bounds__(kThreads)
    AccumulateParamGradsKernel(float* __restrict__ dcol, const float* __restrict__ parts_col,
                               float* __restrict__ dcol2, const float* __restrict__ parts_col2,
                               int P, int D, float* __restrict__ dscalar,
                               const float* __restrict__ parts_scalar, int Ps, int col_blocks) {
  __shared__ float smem[32];
  if (static_cast<int>(blockIdx.x) < col_blocks) {
    const int c = blockIdx.x * kThreads + threadIdx.x;
    if (c >= D) return;  // no barrier in this branch
    float s = 0.f, s2 = 0.f;
#pragma unroll 8
    for (int p = 0; p < P; ++p) {
      s += parts_col[static_cast<int64_t>(p) * D + c];
      if (dcol2 != nullptr) s2 += parts_col2[static_cast<int64_t>(p) * D + c];
    }
    dcol[c] += s;
    if (dcol2 != nullptr) dcol2[c] += s2;
    return;
  }
  // The scalar block: strided per-thread sums in fixed order, then a fixed-order block sum.
  float s = 0.f;
  for (int i = threadIdx.x; i < Ps; i += kThreads) s += parts_scalar[i];
  s = BlockSum(s, smem);
  if (threadIdx.x == 0) *dscalar += s;
}

}  // namespace

cudaError_t LaunchAccumulateParamGrads(float* dcol, const float* parts_col, float* dcol2,
                                       const float* parts_col2, int P, int D, float* dscalar,
                                       const float* parts_scalar, int Ps, cudaStream_t stream) {
  const int col_blocks = dcol != nullptr ? static_cast<int>(CeilDiv(D, kThreads)) : 0;
  const int blocks = col_blocks + (dscalar != nullptr ? 1 : 0);
  if (blocks == 0) return cudaSuccess;
  AccumulateParamGradsKernel<<<blocks, kThreads, 0, stream>>>(
      dcol, parts_col, dcol2, parts_col2, P, D, dscalar, parts_scalar, Ps, col_blocks);
  return cudaGetLastError();
}

}  // namespace dyt::cuda::detail
