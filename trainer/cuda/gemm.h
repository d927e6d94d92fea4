// The matrix products of a Linear layer on the GPU, through cuBLASLt, in nn.Linear's layout.
//
// Twins of dyt::cpu::LinearForward / LinearBackward (trainer/cpu/kernels.h). All matrices are
// dense and row-major; W is [out, in]. Inputs are bf16, accumulation is fp32
// (CUBLAS_COMPUTE_32F, fp32 alpha/beta):
//   Forward         y[N, out]   = x[N, in] @ W^T                   (bf16 out, no bias)
//   BackwardData    dx[N, in]  (+)= dy[N, out] @ W                 (bf16 out)
//   BackwardWeight  dW[out, in] (+)= dy^T @ x                      (fp32 out: the gradient buffer)
// "(+)=" overwrites, or with `accumulate` adds onto what the output holds (beta = 1, the sum
// formed in fp32 and rounded once).
//
// Row-major to column-major. cuBLASLt is column-major; a row-major [R, C] matrix is the same
// memory as a column-major [C, R] one (its transpose) with leading dimension C. So every
// product is computed transposed, C^T = B^T A^T, with the operands' memory reused as is:
//   Forward:        y^T [out, N]  = op(W: col-major [in, out], T) @ (x: col-major [in, N], N)
//                   m = out, n = N, k = in                               ("TN")
//   BackwardData:   dx^T [in, N]  = (W: col-major [in, out], N) @ (dy: col-major [out, N], N)
//                   m = in, n = N, k = out                               ("NN")
//   BackwardWeight: dW^T [in, out] = (x: col-major [in, N], N) @ op(dy: col-major [out, N], T)
//                   m = in, n = out, k = N                               ("NT")
//
// Epilogues. None: LLaMA's Linear layers have no bias and no GELU (cuBLASLt's fused epilogues),
// and the residual adds are fused into the next norm's kernel (ResidualDytForward and the norm
// backwards), which moves the same bytes as a beta = 1 epilogue adding the residual would,
// without rounding the residual stream to the product's type. The one fusion that saves memory
// traffic is beta = 0 for a micro-batch's first weight gradient (no read, no zeroing pass:
// GradMode::kOverwrite in llama_cuda.h).
//
// Algorithms. The first result of cublasLtMatmulAlgoGetHeuristic is cached per problem: the
// product, (N, in, out), whether beta is 1, and the alignment of each pointer (up to 256
// bytes; the heuristic is told it, so a misaligned view gets an algorithm that can read it).
// The matmul descriptor and the four layouts are cached with it.
//
// Threading and streams. One Gemm owns one 32 MiB workspace that every call hands to
// cuBLASLt: calls on the same stream are safe; calls that may run at the same time on
// different streams need one Gemm each. Not thread-safe (the cache is unlocked). A Gemm is
// tied to the device current at Create.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

class Gemm {
 public:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;

  // A cuBLASLt handle and the workspace, on the current device.
  static StatusOr<Gemm> Create();

  Gemm(Gemm&&) noexcept;
  Gemm& operator=(Gemm&&) noexcept;
  ~Gemm();

  // y[N, out] = x[N, in] @ W^T. N == 0 does nothing.
  Status Forward(bf16* y, const bf16* x, const bf16* w, int64_t N, int in, int out,
                 cudaStream_t stream);
  // dx[N, in] = dy[N, out] @ W, or dx += dy @ W when `accumulate`.
  Status BackwardData(bf16* dx, const bf16* dy, const bf16* w, int64_t N, int in, int out,
                      bool accumulate, cudaStream_t stream);
  // dW[out, in] = dy^T @ x, or dW += dy^T @ x when `accumulate` (the usual case: dW is the fp32
  // gradient buffer, summed over micro-batches). With N == 0 an accumulating call does nothing
  // and an overwriting one zeroes dW.
  Status BackwardWeight(float* dw, const bf16* dy, const bf16* x, int64_t N, int in, int out,
                        bool accumulate, cudaStream_t stream);

  // Problems whose algorithm is cached (tests).
  size_t cached_plans() const;

 private:
  struct Impl;
  explicit Gemm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// dst[i] = bf16(src[i]), rounded to nearest even (the bf16 copy of fp32 master weights).
// 16-byte accesses when both pointers allow it (8 elements a step), scalar otherwise.
Status CastFp32ToBf16(bf16* dst, const float* src, int64_t n, cudaStream_t stream);

}  // namespace dyt::cuda
