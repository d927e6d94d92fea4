// CastFp32ToBf16 (declared in gemm.h): the bf16 copy of the fp32 master weights that the
// matrix products read. Memory-bound: a grid-stride loop over 8-element steps, two 16-byte
// loads and one 16-byte store each, when both pointers are 16-byte aligned; the last n % 8
// elements (or everything, when misaligned) one at a time.
#include <algorithm>
#include <cstdint>
#include <string>

#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/gemm.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"

namespace dyt::cuda {
namespace {

constexpr int kCastThreads = 256;

__global__ void CastVec8Kernel(bf16* __restrict__ dst, const float* __restrict__ src,
                               int64_t n_vec) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t v = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; v < n_vec; v += stride) {
    const float4 lo = reinterpret_cast<const float4*>(src)[2 * v];
    const float4 hi = reinterpret_cast<const float4*>(src)[2 * v + 1];
    __nv_bfloat162 out[4] = {__floats2bfloat162_rn(lo.x, lo.y), __floats2bfloat162_rn(lo.z, lo.w),
                             __floats2bfloat162_rn(hi.x, hi.y), __floats2bfloat162_rn(hi.z, hi.w)};
    reinterpret_cast<uint4*>(dst)[v] = *reinterpret_cast<const uint4*>(out);
  }
}

__global__ void CastScalarKernel(bf16* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    dst[i] = __float2bfloat16_rn(src[i]);
  }
}

unsigned GridFor(int64_t work) {
  const int64_t blocks =
      std::min(detail::CeilDiv(work, kCastThreads), detail::MaxResidentBlocks(kCastThreads));
  return static_cast<unsigned>(std::max<int64_t>(blocks, 1));
}

}  // namespace

Status CastFp32ToBf16(bf16* dst, const float* src, int64_t n, cudaStream_t stream) {
  if (n < 0) return InvalidArgument("CastFp32ToBf16: n=" + std::to_string(n) + " must be >= 0");
  if (n == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("CastFp32ToBf16", "dst", dst));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("CastFp32ToBf16", "src", src));
  int64_t done = 0;
  if (detail::Aligned16(dst) && detail::Aligned16(src)) {
    const int64_t n_vec = n / 8;
    if (n_vec > 0) {
      DYT_LAUNCH(CastVec8Kernel, GridFor(n_vec), kCastThreads, 0, stream, dst, src, n_vec);
      DYT_RETURN_IF_ERROR(LaunchStatus("CastFp32ToBf16 (CastVec8Kernel)"));
    }
    done = n_vec * 8;
  }
  if (done < n) {
    DYT_LAUNCH(CastScalarKernel, GridFor(n - done), kCastThreads, 0, stream, dst + done, src + done,
               n - done);
    DYT_RETURN_IF_ERROR(LaunchStatus("CastFp32ToBf16 (CastScalarKernel)"));
  }
  return Status::Ok();
}

}  // namespace dyt::cuda
