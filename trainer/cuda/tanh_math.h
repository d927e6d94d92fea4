// The fp32 tanh of the CUDA kernels' TanhImpl::kExpRcp, written once for the device and for
// host-side accuracy tests (plain C++: no CUDA headers needed).
//
// It is the formula of CUDA 13's libdevice tanhf (read off its PTX: same constants, same order
// of operations), without tanhf's saturation test (|x| >= 9.0109 -> 1), which the formula
// already meets: ex2 -> 2^26 or more, so 2 * rcp(e + 1) <= 2^-25 and 1 - 2^-25 rounds to 1.
//   |x| <  0.6:  x + x^3 * p(x^2)                  (odd polynomial: full relative precision near 0)
//   |x| >= 0.6:  copysign(1 - 2 / (2^(2 |x| / ln 2) + 1), x)
// On the device ex2 and rcp are the MUFU approximations ex2.approx.ftz.f32 and
// rcp.approx.ftz.f32: two special-function instructions and about 13 others per element, two
// fewer than tanhf. Host tests pass their own ex2/rcp (exact, or perturbed by the hardware's
// documented error bounds) to bound the device's error.
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define DYT_HOST_DEVICE __host__ __device__
#else
#define DYT_HOST_DEVICE
#endif

namespace dyt::cuda::tanh_math {

// Hex-exact fp32 constants (libdevice's bits).
inline constexpr float kTwoOverLn2 = 0x1.715476p+1f;  // 2 / ln 2, 0x4038AA3B
inline constexpr float kP0 = 0x1.01e104p-6f;          // 0x3C80F082
inline constexpr float kP1 = -0x1.ac795cp-5f;         // 0xBD563CAE
inline constexpr float kP2 = 0x1.10b282p-3f;          // 0x3E085941
inline constexpr float kP3 = -0x1.5553dap-2f;         // 0xBEAAA9ED
inline constexpr float kSmall = 0x1.333334p-1f;       // 0.6f, 0x3F19999A

// ex2(a) ~ 2^a and rcp(v) ~ 1 / v, each a callable float -> float.
template <typename Ex2, typename Rcp>
DYT_HOST_DEVICE inline float TanhExpRcp(float x, Ex2 ex2, Rcp rcp) {
  const float ax = fabsf(x);
  const float e = ex2(ax * kTwoOverLn2);
  const float big = copysignf(fmaf(rcp(e + 1.0f), -2.0f, 1.0f), x);
  const float z = x * x;
  float p = fmaf(kP0, z, kP1);
  p = fmaf(p, z, kP2);
  p = fmaf(p, z, kP3);
  p = fmaf(p, z, 0.0f);
  const float small = fmaf(p, x, x);
  return ax >= kSmall ? big : small;
}

}  // namespace dyt::cuda::tanh_math
