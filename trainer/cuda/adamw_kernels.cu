// AdamW update (adamw_kernels.h): elementwise. Vector path: 4 elements per step (one float4 of
// params, grads, m and v each, 8 bytes of bf16) when params, grads, m, v are 16-byte aligned
// and params_bf16 8-byte aligned; the last n % 4 elements (or all, when misaligned) one at a
// time. Every operation is an explicitly rounded intrinsic (__fmul_rn, __fadd_rn, __fdiv_rn,
// __fsqrt_rn), in the order of dyt::AdamW::Step, so nvcc cannot contract a product and a sum
// into an FMA; with IEEE sqrt and division on both sides the results match the CPU bit for bit
// (denormals are kept: the CUDA flags leave -ftz off).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "trainer/cuda/adamw_kernels.h"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"

namespace dyt::cuda {
namespace {

constexpr int kAdamThreads = 256;

// One element: p, m and v updated in place.
__device__ __forceinline__ void AdamElement(float& p, float& m, float& v, float grad,
                                            const AdamWScalars& s, float one_minus_b1,
                                            float one_minus_b2) {
  const float g = __fmul_rn(grad, s.grad_scale);
  p = __fmul_rn(p, s.decay);
  m = __fadd_rn(__fmul_rn(m, s.beta1), __fmul_rn(g, one_minus_b1));
  v = __fadd_rn(__fmul_rn(v, s.beta2), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), s.bc2_sqrt), s.eps);
  p = __fadd_rn(p, __fmul_rn(-s.step_size, __fdiv_rn(m, denom)));
}

__global__ void __launch_bounds__(kAdamThreads)
    AdamWVec4Kernel(float* __restrict__ params, bf16* __restrict__ params_bf16,
                    const float* __restrict__ grads, float* __restrict__ m_buf,
                    float* __restrict__ v_buf, int64_t n_vec, AdamWScalars s) {
  const float omb1 = __fsub_rn(1.0f, s.beta1);
  const float omb2 = __fsub_rn(1.0f, s.beta2);
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; j < n_vec; j += stride) {
    float4 p = reinterpret_cast<const float4*>(params)[j];
    const float4 g = __ldcs(reinterpret_cast<const float4*>(grads) + j);
    float4 m = reinterpret_cast<const float4*>(m_buf)[j];
    float4 v = reinterpret_cast<const float4*>(v_buf)[j];
    AdamElement(p.x, m.x, v.x, g.x, s, omb1, omb2);
    AdamElement(p.y, m.y, v.y, g.y, s, omb1, omb2);
    AdamElement(p.z, m.z, v.z, g.z, s, omb1, omb2);
    AdamElement(p.w, m.w, v.w, g.w, s, omb1, omb2);
    reinterpret_cast<float4*>(params)[j] = p;
    reinterpret_cast<float4*>(m_buf)[j] = m;
    reinterpret_cast<float4*>(v_buf)[j] = v;
    if (params_bf16 != nullptr) {
      __nv_bfloat162 out[2] = {__floats2bfloat162_rn(p.x, p.y), __floats2bfloat162_rn(p.z, p.w)};
      reinterpret_cast<uint2*>(params_bf16)[j] = *reinterpret_cast<const uint2*>(out);
    }
  }
}

__global__ void __launch_bounds__(kAdamThreads)
    AdamWScalarKernel(float* __restrict__ params, bf16* __restrict__ params_bf16,
                      const float* __restrict__ grads, float* __restrict__ m_buf,
                      float* __restrict__ v_buf, int64_t n, AdamWScalars s) {
  const float omb1 = __fsub_rn(1.0f, s.beta1);
  const float omb2 = __fsub_rn(1.0f, s.beta2);
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    float p = params[i], m = m_buf[i], v = v_buf[i];
    AdamElement(p, m, v, grads[i], s, omb1, omb2);
    params[i] = p;
    m_buf[i] = m;
    v_buf[i] = v;
    if (params_bf16 != nullptr) params_bf16[i] = __float2bfloat16_rn(p);
  }
}

unsigned GridFor(int64_t work) {
  const int64_t blocks =
      std::min(detail::CeilDiv(work, kAdamThreads), detail::MaxResidentBlocks(kAdamThreads));
  return static_cast<unsigned>(std::max<int64_t>(blocks, 1));
}

bool Aligned8(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 7u) == 0; }

}  // namespace

Status AdamWUpdate(float* params, bf16* params_bf16, const float* grads, float* m, float* v,
                   int64_t n, const AdamWScalars& s, cudaStream_t stream) {
  constexpr const char* kFn = "AdamWUpdate";
  if (n < 0)
    return InvalidArgument(std::string(kFn) + ": n=" + std::to_string(n) + " must be >= 0");
  if (n == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "params", params));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "grads", grads));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "m", m));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "v", v));
  if (!(s.bc2_sqrt > 0.0f) || !(s.step_size >= 0.0f)) {
    return InvalidArgument(std::string(kFn) + ": scalars bc2_sqrt=" + std::to_string(s.bc2_sqrt) +
                           " must be > 0 and step_size=" + std::to_string(s.step_size) +
                           " >= 0 (use AdamWStepScalars with t >= 1)");
  }
  int64_t done = 0;
  if (detail::Aligned16(params) && detail::Aligned16(grads) && detail::Aligned16(m) &&
      detail::Aligned16(v) && (params_bf16 == nullptr || Aligned8(params_bf16))) {
    const int64_t n_vec = n / 4;
    if (n_vec > 0) {
      DYT_LAUNCH(AdamWVec4Kernel, GridFor(n_vec), kAdamThreads, 0, stream, params, params_bf16,
                 grads, m, v, n_vec, s);
      DYT_RETURN_IF_ERROR(LaunchStatus("AdamWUpdate (AdamWVec4Kernel)"));
    }
    done = n_vec * 4;
  }
  if (done < n) {
    DYT_LAUNCH(AdamWScalarKernel, GridFor(n - done), kAdamThreads, 0, stream, params + done,
               params_bf16 == nullptr ? nullptr : params_bf16 + done, grads + done, m + done,
               v + done, n - done, s);
    DYT_RETURN_IF_ERROR(LaunchStatus("AdamWUpdate (AdamWScalarKernel)"));
  }
  return Status::Ok();
}

}  // namespace dyt::cuda
