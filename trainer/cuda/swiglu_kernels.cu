// SwiGLU kernels (swiglu_kernels.h): elementwise grid-stride loops. Vector path: 8 elements per
// step (16-byte loads/stores) when every pointer is 16-byte aligned; the last n % 8 elements
// (or all, when misaligned) one at a time. Outputs may alias inputs (no __restrict__): each
// thread loads all its inputs before storing, and an element is only touched by one thread.
#include <algorithm>
#include <cstdint>
#include <string>

#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"
#include "trainer/cuda/swiglu_kernels.h"

namespace dyt::cuda {
namespace {

using detail::kVecWidth;

constexpr int kSwigluThreads = 256;

// 1 / (1 + e^-a) with e^-a's argument clamped at 88, as the CPU's FastSigmoid clamps it: for
// a < -88 both give 1 / (1 + e^88) ~ 6e-39, not the 0 an overflowed __expf would (a gradient of
// ~1e-37 instead of 0, which a one-element comparison sees). Large a: __expf underflows to 0, 1.
__device__ __forceinline__ float Sigmoid(float a) {
  return 1.0f / (1.0f + __expf(fminf(-a, 88.0f)));
}

template <int kVec>
__global__ void __launch_bounds__(kSwigluThreads)
    SwigluForwardKernel(bf16* g, const bf16* h1, const bf16* h3, int64_t n_steps) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; j < n_steps; j += stride) {
    float a[kVec], b[kVec], out[kVec];
    detail::LoadVec<kVec>(h1 + j * kVec, a);
    detail::LoadVec<kVec>(h3 + j * kVec, b);
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = a[k] * Sigmoid(a[k]) * b[k];
    detail::StoreVec<kVec>(g + j * kVec, out);
  }
}

template <int kVec>
__global__ void __launch_bounds__(kSwigluThreads)
    SwigluBackwardKernel(bf16* dh1, bf16* dh3, const bf16* dg, const bf16* h1, const bf16* h3,
                         int64_t n_steps) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; j < n_steps; j += stride) {
    float d[kVec], a[kVec], b[kVec], o1[kVec], o3[kVec];
    detail::LoadVec<kVec>(dg + j * kVec, d);
    detail::LoadVec<kVec>(h1 + j * kVec, a);
    detail::LoadVec<kVec>(h3 + j * kVec, b);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const float s = Sigmoid(a[k]);
      o3[k] = d[k] * (a[k] * s);
      // d silu / da = s * (1 + a * (1 - s))
      o1[k] = d[k] * b[k] * s * (1.0f + a[k] * (1.0f - s));
    }
    detail::StoreVec<kVec>(dh3 + j * kVec, o3);
    detail::StoreVec<kVec>(dh1 + j * kVec, o1);
  }
}

unsigned GridFor(int64_t work) {
  const int64_t blocks =
      std::min(detail::CeilDiv(work, kSwigluThreads), detail::MaxResidentBlocks(kSwigluThreads));
  return static_cast<unsigned>(std::max<int64_t>(blocks, 1));
}

Status CheckCount(const char* fn, int64_t n) {
  if (n < 0) return InvalidArgument(std::string(fn) + ": n=" + std::to_string(n) + " must be >= 0");
  return Status::Ok();
}

}  // namespace

Status SwigluForward(bf16* g, const bf16* h1, const bf16* h3, int64_t n, cudaStream_t stream) {
  constexpr const char* kFn = "SwigluForward";
  DYT_RETURN_IF_ERROR(CheckCount(kFn, n));
  if (n == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "g", g));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "h1", h1));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "h3", h3));
  int64_t done = 0;
  if (detail::Aligned16(g) && detail::Aligned16(h1) && detail::Aligned16(h3)) {
    const int64_t n_vec = n / kVecWidth;
    if (n_vec > 0) {
      DYT_LAUNCH(SwigluForwardKernel<kVecWidth>, GridFor(n_vec), kSwigluThreads, 0, stream, g, h1,
                 h3, n_vec);
      DYT_RETURN_IF_ERROR(LaunchStatus("SwigluForward (vector kernel)"));
    }
    done = n_vec * kVecWidth;
  }
  if (done < n) {
    DYT_LAUNCH(SwigluForwardKernel<1>, GridFor(n - done), kSwigluThreads, 0, stream, g + done,
               h1 + done, h3 + done, n - done);
    DYT_RETURN_IF_ERROR(LaunchStatus("SwigluForward (scalar kernel)"));
  }
  return Status::Ok();
}

Status SwigluBackward(bf16* dh1, bf16* dh3, const bf16* dg, const bf16* h1, const bf16* h3,
                      int64_t n, cudaStream_t stream) {
  constexpr const char* kFn = "SwigluBackward";
  DYT_RETURN_IF_ERROR(CheckCount(kFn, n));
  if (n == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "dh1", dh1));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "dh3", dh3));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "dg", dg));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "h1", h1));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "h3", h3));
  if (dh1 == dh3) return InvalidArgument(std::string(kFn) + ": dh1 and dh3 must differ");
  int64_t done = 0;
  if (detail::Aligned16(dh1) && detail::Aligned16(dh3) && detail::Aligned16(dg) &&
      detail::Aligned16(h1) && detail::Aligned16(h3)) {
    const int64_t n_vec = n / kVecWidth;
    if (n_vec > 0) {
      DYT_LAUNCH(SwigluBackwardKernel<kVecWidth>, GridFor(n_vec), kSwigluThreads, 0, stream, dh1,
                 dh3, dg, h1, h3, n_vec);
      DYT_RETURN_IF_ERROR(LaunchStatus("SwigluBackward (vector kernel)"));
    }
    done = n_vec * kVecWidth;
  }
  if (done < n) {
    DYT_LAUNCH(SwigluBackwardKernel<1>, GridFor(n - done), kSwigluThreads, 0, stream, dh1 + done,
               dh3 + done, dg + done, h1 + done, h3 + done, n - done);
    DYT_RETURN_IF_ERROR(LaunchStatus("SwigluBackward (scalar kernel)"));
  }
  return Status::Ok();
}

}  // namespace dyt::cuda
