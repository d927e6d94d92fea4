// The SwiGLU gate on the GPU: g = silu(h1) * h3, silu(z) = z * sigmoid(z).
//
// Twin of dyt::cpu::SwigluForward / SwigluBackward (trainer/cpu/kernels.h). n bf16 elements,
// math in fp32. Elementwise, so outputs may alias inputs of the same index: g may alias h1 or
// h3, and dh1 / dh3 may alias h1 / h3 (each element is read before it is written). Enqueued on
// `stream`; INVALID_ARGUMENT for bad arguments, INTERNAL for a launch error.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

Status SwigluForward(bf16* g, const bf16* h1, const bf16* h3, int64_t n, cudaStream_t stream);
// dh1 = dg * h3 * silu'(h1), dh3 = dg * silu(h1); both overwritten.
Status SwigluBackward(bf16* dh1, bf16* dh3, const bf16* dg, const bf16* h1, const bf16* h3,
                      int64_t n, cudaStream_t stream);

}  // namespace dyt::cuda
