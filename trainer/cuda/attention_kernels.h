// Causal grouped-query attention on the GPU, flash-style: tiles of Q, K and V in shared memory,
// an online softmax in registers, tensor-core (bf16 in, fp32 accumulate) products, and no
// T x T matrix in global memory.
//
// Twin of dyt::cpu::AttentionForward / AttentionBackward (trainer/cpu/kernels.h).
//
// Layout. Token (b, t) is row b*T + t of each tensor. A row of q holds n_heads heads of
// head_dim bf16 elements at q + row * ld_q; a row of k and v holds n_kv_heads heads at
// k + row * ld_kv and v + row * ld_kv. The strides let q, k and v be views into one fused
// qkv GEMM output ([N, (n_heads + 2 n_kv_heads) * head_dim], ld = that width). out / dout rows
// are at ld_o, dq at ld_dq, dk and dv at ld_dkv (again so they can be views of one fused
// gradient buffer). Query head h reads kv head h / (n_heads / n_kv_heads). Scores are scaled
// by 1/sqrt(head_dim). lse [B, n_heads, T] (fp32) receives each row's log-sum-exp of the
// scaled scores; the backward rebuilds the softmax from it.
//
// Supported: head_dim 64 or 128 (the tensor-core tiles are compiled for these), any T >= 1,
// B >= 1, n_heads a multiple of n_kv_heads, B and n_heads at most 65535 (grid dimensions),
// every row stride a multiple of 8 elements and at least its row's width, and every pointer
// (scratch included) 16-byte aligned. Anything else is INVALID_ARGUMENT naming the argument.
//
// Backward modes (AttentionBackwardMode):
//   kDeterministic (the default): no float atomics. dk and dv of a kv block are summed over
//     its query blocks and over the query heads of its group inside one thread block, in a
//     fixed order; dq is computed by a separate pass over kv blocks, which recomputes the
//     scores and dP (7 tile products per query/kv tile pair). Same inputs, same GPU model:
//     same bits.
//   kAtomicDq: one pass (5 tile products per pair, as FlashAttention-2): dq is added into an
//     fp32 accumulator in the scratch with float atomics, in the order the blocks happen to
//     run, so dq may differ in its last bits between runs (dk, dv stay deterministic). Its
//     scratch is larger by B * T * n_heads * head_dim floats.
//   kOrderedDq: the one pass of kAtomicDq with the atomics of each query tile taken in a fixed
//     order (the kv tiles in descending order, through a per-tile counter in the scratch:
//     FlashAttention-3's deterministic scheme), so deterministic again; the first kv tile of
//     each query tile stores instead of adding and the last writes dq itself, so it also skips
//     kAtomicDq's zeroing of the accumulator and its pass over it. It relies on the GPU
//     starting thread blocks in index order, as that scheme and CUTLASS's serial split-K do.
//
// Everything is enqueued on `stream`; INTERNAL for a launch error.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

enum class AttentionBackwardMode { kDeterministic, kAtomicDq, kOrderedDq };

// RoPE's tables, fp32 [T, head_dim / 2] each (dyt::cpu::RopeTables uploaded; rope_kernels.h),
// 16-byte aligned.
// Given to the backward when q and k were rotated before the forward: dq and dk then come out
// as the gradients of the unrotated q and k (RoPE's backward, the inverse rotation, applied in
// fp32 before their one rounding to bf16), so no separate RopeBackward pass is needed.
struct RopeTables {
  const float* cos = nullptr;
  const float* sin = nullptr;
};

struct AttentionShape {
  int B = 0, T = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t ld_q = 0, ld_kv = 0, ld_o = 0;  // row strides (elements) of q, k/v, out/dout
};

// out [B*T rows, n_heads*head_dim at ld_o] = softmax(q k^T / sqrt(hd), causal) v; lse as above.
Status FlashAttentionForward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const AttentionShape& shape, cudaStream_t stream);

// Device scratch the backward needs in `mode` (the per-row dot(dout, out) terms, fp32
// [B, n_heads, T]; with kAtomicDq and kOrderedDq also the fp32 dq accumulator, with
// kOrderedDq also the per-tile counts).
size_t FlashAttentionBackwardScratchBytes(
    const AttentionShape& shape,
    AttentionBackwardMode mode = AttentionBackwardMode::kDeterministic);

// dq (row stride ld_dq), dk and dv (row stride ld_dkv) are OVERWRITTEN. out and lse are the
// forward's outputs for the same q, k, v.
Status FlashAttentionBackward(bf16* dq, bf16* dk, bf16* dv, int64_t ld_dq, int64_t ld_dkv,
                              const bf16* dout, const bf16* out, const float* lse, const bf16* q,
                              const bf16* k, const bf16* v, const AttentionShape& shape,
                              void* scratch, size_t scratch_bytes, cudaStream_t stream,
                              AttentionBackwardMode mode = AttentionBackwardMode::kDeterministic,
                              RopeTables rope = {});

}  // namespace dyt::cuda
