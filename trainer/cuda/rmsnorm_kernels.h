// CUDA kernels of RMSNorm, the baseline DyT replaces: y = x / sqrt(mean(x^2) + eps) * w.
//
// Twins of dyt::cpu::RmsNormForward / RmsNormBackward (trainer/cpu/kernels.h), with the
// conventions of dyt_kernels.h: bf16 activations, a bf16 or fp32 residual stream, fp32 math,
// fp32 device parameters and gradients, dx overwritten and dw accumulated (+=) through a
// deterministic two-stage reduction, everything enqueued on `stream`, Status returns.
//
// One block handles one row at a time (the row's sum of squares is a block reduction) and
// strides over rows. Fast path: D % 8 == 0, D <= 16384 (forward) / 8192 (backward), 16-byte
// aligned pointers; otherwise a scalar path that reads the row twice gives the same results.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

// y = x * rstd * w with rstd[row] = 1 / sqrt(mean(x[row]^2) + eps). `rstd` [N] may be null
// (inference); the backward pass needs it.
Status RmsNormForward(bf16* y, float* rstd, const bf16* x, const float* w, float eps, int64_t N,
                      int D, cudaStream_t stream);
Status RmsNormForward(bf16* y, float* rstd, const float* x, const float* w, float eps, int64_t N,
                      int D, cudaStream_t stream);

// r_out = r + d (rounded to the residual's type; may alias r), then RMSNorm of the rounded
// r_out, in one pass over memory.
Status ResidualRmsNormForward(bf16* r_out, bf16* y, float* rstd, const bf16* r, const bf16* d,
                              const float* w, float eps, int64_t N, int D, cudaStream_t stream);
Status ResidualRmsNormForward(float* r_out, bf16* y, float* rstd, const float* r, const bf16* d,
                              const float* w, float eps, int64_t N, int D, cudaStream_t stream);

// Bytes of device scratch RmsNormBackward needs for an [N, D] input on the CURRENT device.
size_t RmsNormBackwardScratchBytes(int64_t N, int D);

// With r = rstd[row] from the forward pass:
//   dx  = dr + r * w * dy - x * r^3 * mean(w * dy * x)     (dr may be null; dx may alias dr,
//                                                          never dy or x)
//   dw += sum_rows(dy * x * r)
Status RmsNormBackward(bf16* dx, float* dw, const bf16* dy, const bf16* x, const float* rstd,
                       const float* w, const bf16* dr, int64_t N, int D, void* scratch,
                       size_t scratch_bytes, cudaStream_t stream);
Status RmsNormBackward(bf16* dx, float* dw, const bf16* dy, const float* x, const float* rstd,
                       const float* w, const bf16* dr, int64_t N, int D, void* scratch,
                       size_t scratch_bytes, cudaStream_t stream);

}  // namespace dyt::cuda
