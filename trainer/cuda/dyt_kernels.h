// CUDA kernels of Dynamic Tanh, fused with the residual add: y = gamma * tanh(alpha * x) + beta.
//
// Twins of dyt::cpu::DytForward / DytBackward (trainer/cpu/kernels.h); tests/cuda compares them.
//
// Conventions (shared with rmsnorm_kernels.h):
//   * Tensors are row-major [N, D] (N = batch * positions, D = channels), contiguous.
//   * Activations are bf16. The residual stream, and so the DyT input x, is bf16 or fp32
//     (one overload each): bf16 halves its traffic (llm.c and Megatron's default), fp32 keeps
//     small branch updates that bf16 would round away. All math is fp32 in registers.
//   * Parameters and their gradients are fp32 DEVICE pointers: alpha is ONE float (read on the
//     device, so an optimizer step on the GPU needs no host round trip), gamma and beta [D].
//     beta (and dbeta) may be null: DyT without bias (dyt_bias off).
//   * Backward functions OVERWRITE dx and ACCUMULATE (+=) into dalpha, dgamma, dbeta.
//   * The parameter gradients are reduced deterministically: each block writes partial sums to
//     `scratch`, and a second kernel adds them in a fixed order. No float atomics, so results
//     are bit-identical from run to run on the same GPU model (the grid is sized to the
//     device, so another model may round differently).
//   * Everything is enqueued on `stream`; nothing synchronizes. Launchers return
//     INVALID_ARGUMENT for bad arguments (before launching anything) and INTERNAL for launch
//     errors. Errors inside a kernel surface at the next synchronizing call.
//   * Fast path: D % 8 == 0 and every pointer 16-byte aligned (any cudaMalloc'd base is); it
//     moves 16 bytes per access. Otherwise a scalar path gives the same results, slower.
//   * TanhMode::kFast uses the hardware tanh (relative error ~2^-11, below bf16's 2^-9
//     output rounding); kAccurate uses tanhf. Forward and backward should use the same mode.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

enum class TanhMode { kAccurate, kFast };

// y = gamma * tanh(alpha * x) + beta. The first layer's DyT (no residual add before it).
Status DytForward(bf16* y, const bf16* x, const float* alpha, const float* gamma, const float* beta,
                  int64_t N, int D, cudaStream_t stream, TanhMode tanh_mode = TanhMode::kAccurate);
Status DytForward(bf16* y, const float* x, const float* alpha, const float* gamma,
                  const float* beta, int64_t N, int D, cudaStream_t stream,
                  TanhMode tanh_mode = TanhMode::kAccurate);

// r_out = r + d (the residual add, rounded to the residual's type), then
// y = gamma * tanh(alpha * r_out) + beta, in one pass over memory. y is computed from the
// ROUNDED r_out, the value the backward pass will read back as x. r_out may alias r (in-place
// residual update); y must not alias anything.
Status ResidualDytForward(bf16* r_out, bf16* y, const bf16* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode = TanhMode::kAccurate);
Status ResidualDytForward(float* r_out, bf16* y, const float* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode = TanhMode::kAccurate);

// Bytes of device scratch DytBackward needs for an [N, D] input on the CURRENT device (any
// alignment, either x type, either tanh mode).
size_t DytBackwardScratchBytes(int64_t N, int D);

// With t = tanh(alpha * x) recomputed (no stored t):
//   dx = dr + dy * gamma * alpha * (1 - t^2)        (dr may be null: dx = the DyT term alone)
//   *dalpha += sum(dy * gamma * (1 - t^2) * x)
//   dgamma  += sum_rows(dy * t)
//   dbeta   += sum_rows(dy)                          (skipped when dbeta is null)
// dr is the gradient arriving through the residual stream; dx may alias dr (in place), never
// dy or x.
// `scratch` holds at least DytBackwardScratchBytes(N, D) bytes of device memory; it must not
// be in use by other work on other streams.
Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const bf16* x, const bf16* dr, const float* alpha, const float* gamma, int64_t N,
                   int D, void* scratch, size_t scratch_bytes, cudaStream_t stream,
                   TanhMode tanh_mode = TanhMode::kAccurate);
Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const float* x, const bf16* dr, const float* alpha, const float* gamma,
                   int64_t N, int D, void* scratch, size_t scratch_bytes, cudaStream_t stream,
                   TanhMode tanh_mode = TanhMode::kAccurate);

}  // namespace dyt::cuda
