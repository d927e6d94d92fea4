// Rotary position embedding on the GPU (interleaved pairs, as in Meta's LLaMA).
//
// Twin of dyt::cpu::RopeForward / RopeBackward (trainer/cpu/kernels.h). x holds B*T rows
// (token b*T + t) of `ld` bf16 elements each; the row's first n_heads * head_dim elements are
// the heads [n_heads, head_dim] to rotate (the rest of the row, e.g. the k and v parts of a
// fused qkv row, is untouched). The pair (x[2i], x[2i+1]) of a head at position t is rotated
// by the angle t * theta^(-2i / head_dim); `cos` / `sin` are fp32 device tables [T, head_dim/2]
// (dyt::cpu::RopeTables uploaded). Math in fp32, one rounding per stored value. In place.
// Enqueued on `stream`; INVALID_ARGUMENT for bad arguments (odd head_dim, ld too small,
// null pointers), INTERNAL for a launch error.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

Status RopeForward(bf16* x, int64_t ld, const float* cos, const float* sin, int B, int T,
                   int n_heads, int head_dim, cudaStream_t stream);
// The inverse rotation, applied to the gradient in place.
Status RopeBackward(bf16* dx, int64_t ld, const float* cos, const float* sin, int B, int T,
                    int n_heads, int head_dim, cudaStream_t stream);

}  // namespace dyt::cuda
