// The second, deterministic stage of the parameter-gradient reductions: per-block partial sums
// (written by the backward kernels to a scratch buffer) are summed in a fixed order and added
// into the fp32 gradient buffers. No float atomics anywhere, so gradients are bit-identical
// from run to run.
#include "trainer/cuda/kernel_utils.cuh"

namespace dyt::cuda::detail {

namespace {

// A block is 32 columns x 32 groups of partial rows: thread (x, y) sums rows p = y, y + 32, ...
// of column x in order (a warp reads 32 consecutive floats of one row: coalesced), then the
// 32 group sums of each column are added in group order.
constexpr int kCols = 32;
constexpr int kGroups = 32;

__global__ void __launch_bounds__(kCols* kGroups)
    AccumulateParamGradsKernel(float* __restrict__ dcol, const float* __restrict__ parts_col,
                               float* __restrict__ dcol2, const float* __restrict__ parts_col2,
                               int P, int D, float* __restrict__ dscalar,
                               const float* __restrict__ parts_scalar, int Ps, int col_blocks) {
  __shared__ float s_col[kGroups][kCols + 1];
  __shared__ float s_col2[kGroups][kCols + 1];
  __shared__ float s_red[32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  if (static_cast<int>(blockIdx.x) < col_blocks) {  // uniform across the block
    const int c = blockIdx.x * kCols + tx;
    float s = 0.f, s2 = 0.f;
    if (c < D) {
#pragma unroll 4
      for (int p = ty; p < P; p += kGroups) {
        s += parts_col[static_cast<int64_t>(p) * D + c];
        if (dcol2 != nullptr) s2 += parts_col2[static_cast<int64_t>(p) * D + c];
      }
    }
    s_col[ty][tx] = s;
    s_col2[ty][tx] = s2;
    __syncthreads();
    if (ty == 0 && c < D) {
      float t = 0.f, t2 = 0.f;
      for (int g = 0; g < kGroups; ++g) {
        t += s_col[g][tx];
        t2 += s_col2[g][tx];
      }
      dcol[c] += t;
      if (dcol2 != nullptr) dcol2[c] += t2;
    }
    return;
  }
  // The scalar block: strided per-thread sums in fixed order, then a fixed-order block sum.
  const int tid = ty * kCols + tx;
  float s = 0.f;
  for (int i = tid; i < Ps; i += kCols * kGroups) s += parts_scalar[i];
  s = BlockSum(s, s_red);
  if (tid == 0) *dscalar += s;
}

}  // namespace

cudaError_t LaunchAccumulateParamGrads(float* dcol, const float* parts_col, float* dcol2,
                                       const float* parts_col2, int P, int D, float* dscalar,
                                       const float* parts_scalar, int Ps, cudaStream_t stream) {
  const int col_blocks = dcol != nullptr ? static_cast<int>(CeilDiv(D, kCols)) : 0;
  const int blocks = col_blocks + (dscalar != nullptr ? 1 : 0);
  if (blocks == 0) return cudaSuccess;
  DYT_LAUNCH(AccumulateParamGradsKernel, blocks, dim3(kCols, kGroups), 0, stream, dcol, parts_col,
             dcol2, parts_col2, P, D, dscalar, parts_scalar, Ps, col_blocks);
  return cudaGetLastError();
}

}  // namespace dyt::cuda::detail
