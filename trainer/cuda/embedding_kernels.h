// Token embedding on the GPU, forward and a deterministic backward.
//
// Twins of dyt::cpu::EmbeddingForward / EmbeddingBackward (trainer/cpu/kernels.h).
// The table is the fp32 master copy [V, D] (a gather reads each row once, so bf16 would save
// little); the forward writes the fp32 residual stream.
//
// Determinism: the backward must add the gradients of every position holding token k into row
// k. Float atomics would make the sum order (and the bits) vary from run to run, so the host
// groups positions by token (the tokens come from the host loader anyway) and one block sums
// each group in position order. BuildEmbeddingIndex does the grouping; the caller uploads the
// three arrays and passes their device copies in EmbeddingIndex.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

// x[n] = table[tokens[n]] * scale, N rows of D floats. `scale` is a device pointer to one
// float (the learnable embed_scale) or null for 1. `tokens` is device memory; every token must
// be in [0, V) (the data loader checks it).
Status EmbeddingForward(float* x, const int32_t* tokens, const float* table, const float* scale,
                        int64_t N, int D, cudaStream_t stream);

// Positions grouped by token, on the host: tokens `unique` (ascending), group g holds
// positions[offsets[g] .. offsets[g + 1]) in ascending order. offsets has unique.size() + 1
// entries.
struct HostEmbeddingIndex {
  std::vector<int32_t> unique;
  std::vector<int32_t> offsets;
  std::vector<int32_t> positions;
};
HostEmbeddingIndex BuildEmbeddingIndex(const int32_t* tokens, int64_t N);

// The same arrays in device memory (the caller owns them).
struct EmbeddingIndex {
  const int32_t* unique = nullptr;
  const int32_t* offsets = nullptr;
  const int32_t* positions = nullptr;
  int n_unique = 0;
};

// Device scratch EmbeddingBackward needs for `n_unique` groups (the per-group dscale
// partials, one double each; 8-byte aligned). Only used when dscale is not null.
size_t EmbeddingBackwardScratchBytes(int n_unique);

// dtable[k] += scale * sum over the positions n of group k of dx[n] (fixed order), and when
// dscale is not null, *dscale += sum_n dot(dx[n], table[tokens[n]]) (per-group partials, then
// one fixed-order sum). dx is the bf16 gradient of the residual stream, [N, D]. `scale` as in
// the forward (null: 1). Rows of tokens absent from the batch are untouched.
Status EmbeddingBackward(float* dtable, float* dscale, const bf16* dx, const EmbeddingIndex& index,
                         const float* table, const float* scale, int64_t N, int D, void* scratch,
                         size_t scratch_bytes, cudaStream_t stream);

}  // namespace dyt::cuda
