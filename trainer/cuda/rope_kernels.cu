// RoPE kernels (rope_kernels.h). One block per row (token) at a time, striding over the B * T
// rows; the block's threads stride over the row's first n_heads * head_dim elements, 4 pairs
// (8 bf16, one 16-byte access; 4 cos and 4 sin as one float4 each) per step when head_dim and
// ld are multiples of 8 and the pointers 16-byte aligned, else one pair per step. A step never
// crosses a head: 8 | head_dim, and steps start at multiples of 8. The rest of the row (from
// n_heads * head_dim to ld) is never read or written.
#include <algorithm>
#include <cstdint>
#include <string>

#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"
#include "trainer/cuda/rope_kernels.h"

namespace dyt::cuda {
namespace {

constexpr int kRopeMaxThreads = 256;

// sign = +1 rotates by +angle (forward), -1 by -angle (backward), exactly as the CPU twin:
//   x0' = x0 * c - x1 * (sign * s),  x1' = x0 * (sign * s) + x1 * c.
template <int kPairs>
__global__ void __launch_bounds__(kRopeMaxThreads)
    RopeKernel(bf16* __restrict__ x, int64_t ld, const float* __restrict__ cos_table,
               const float* __restrict__ sin_table, int64_t rows, int T, int row_width,
               int head_dim, float sign) {
  const int half = head_dim / 2;
  const int steps = row_width / (2 * kPairs);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int t = static_cast<int>(row % T);
    bf16* xr = x + row * ld;
    const float* c = cos_table + int64_t{t} * half;
    const float* s = sin_table + int64_t{t} * half;
    for (int j = threadIdx.x; j < steps; j += blockDim.x) {
      const int e = j * 2 * kPairs;      // first element of the step in the row
      const int i = (e % head_dim) / 2;  // its pair index inside the head
      if constexpr (kPairs == 4) {
        float v[8], out[8];
        detail::LoadVec<8>(xr + e, v);
        const float4 cv = __ldg(reinterpret_cast<const float4*>(c + i));
        const float4 sv = __ldg(reinterpret_cast<const float4*>(s + i));
        const float cc[4] = {cv.x, cv.y, cv.z, cv.w};
        const float ss[4] = {sv.x, sv.y, sv.z, sv.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const float si = sign * ss[k];
          out[2 * k] = v[2 * k] * cc[k] - v[2 * k + 1] * si;
          out[2 * k + 1] = v[2 * k] * si + v[2 * k + 1] * cc[k];
        }
        detail::StoreVec<8>(xr + e, out);
      } else {
        const float x0 = __bfloat162float(xr[e]);
        const float x1 = __bfloat162float(xr[e + 1]);
        const float ci = __ldg(c + i);
        const float si = sign * __ldg(s + i);
        xr[e] = __float2bfloat16_rn(x0 * ci - x1 * si);
        xr[e + 1] = __float2bfloat16_rn(x0 * si + x1 * ci);
      }
    }
  }
}

Status Rope(const char* fn, bf16* x, int64_t ld, const float* cos, const float* sin, int B, int T,
            int n_heads, int head_dim, float sign, cudaStream_t stream) {
  const std::string f(fn);
  if (B < 0) return InvalidArgument(f + ": B=" + std::to_string(B) + " must be >= 0");
  if (T < 0) return InvalidArgument(f + ": T=" + std::to_string(T) + " must be >= 0");
  if (n_heads <= 0) {
    return InvalidArgument(f + ": n_heads=" + std::to_string(n_heads) + " must be > 0");
  }
  if (head_dim <= 0 || head_dim % 2 != 0) {
    return InvalidArgument(f + ": head_dim=" + std::to_string(head_dim) + " must be even and > 0");
  }
  const int64_t width = int64_t{n_heads} * head_dim;
  if (width > (int64_t{1} << 30)) {
    return InvalidArgument(f + ": n_heads * head_dim=" + std::to_string(width) + " is too large");
  }
  if (ld < width) {
    return InvalidArgument(f + ": ld=" + std::to_string(ld) +
                           " must be >= n_heads * head_dim=" + std::to_string(width));
  }
  const int64_t rows = int64_t{B} * T;
  if (rows == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "x", x));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "cos", cos));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "sin", sin));
  const bool vec = head_dim % 8 == 0 && ld % 8 == 0 && detail::Aligned16(x) &&
                   detail::Aligned16(cos) && detail::Aligned16(sin);
  const int pairs = vec ? 4 : 1;
  const int steps = static_cast<int>(width / (2 * pairs));
  const int threads = std::min(kRopeMaxThreads, detail::RoundUp(steps, 32));
  const unsigned grid =
      static_cast<unsigned>(std::min<int64_t>(rows, detail::MaxResidentBlocks(threads)));
  const int w = static_cast<int>(width);
  if (vec) {
    DYT_LAUNCH(RopeKernel<4>, grid, threads, 0, stream, x, ld, cos, sin, rows, T, w, head_dim,
               sign);
  } else {
    DYT_LAUNCH(RopeKernel<1>, grid, threads, 0, stream, x, ld, cos, sin, rows, T, w, head_dim,
               sign);
  }
  return LaunchStatus(fn);
}

}  // namespace

Status RopeForward(bf16* x, int64_t ld, const float* cos, const float* sin, int B, int T,
                   int n_heads, int head_dim, cudaStream_t stream) {
  return Rope("RopeForward", x, ld, cos, sin, B, T, n_heads, head_dim, 1.0f, stream);
}

Status RopeBackward(bf16* dx, int64_t ld, const float* cos, const float* sin, int B, int T,
                    int n_heads, int head_dim, cudaStream_t stream) {
  return Rope("RopeBackward", dx, ld, cos, sin, B, T, n_heads, head_dim, -1.0f, stream);
}

}  // namespace dyt::cuda
