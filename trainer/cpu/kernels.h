// CPU (fp32) forward and backward of every LLaMA-DyT layer, written out by hand.
//
// These are the reference implementations: the model (trainer/cpu/llama_cpu.h) is built from
// them, and each CUDA kernel has its twin here that GPU tests compare against.
//
// Conventions (all tensors row-major, contiguous):
//   N  = rows (batch * sequence positions), D = channels of the row.
//   Activations are [B, T, C] which is [N, C] with N = B * T.
//   Backward functions OVERWRITE input gradients (dx, dq, ...) and ACCUMULATE (+=) into
//   parameter gradients (dgamma, dalpha, ...), so gradient accumulation over micro-batches
//   needs no extra pass.
//   Reductions use a fixed order for a fixed OpenMP thread count, so results are bit-identical
//   from run to run on the same machine and thread count.
#pragma once

#include <cstdint>

namespace dyt::cpu {

// ---- Dynamic Tanh: y = gamma * tanh(alpha * x) + beta ------------------------------------
// `t` receives tanh(alpha * x), kept for the backward pass. `beta` may be null (dyt_bias off).
void DytForward(float* y, float* t, const float* x, float alpha, const float* gamma,
                const float* beta, int64_t N, int D);
// dx = dy * gamma * alpha * (1 - t^2); dalpha += sum(dy * gamma * (1 - t^2) * x);
// dgamma += sum_rows(dy * t); dbeta += sum_rows(dy) (skipped when dbeta is null).
void DytBackward(float* dx, float* dalpha, float* dgamma, float* dbeta, const float* dy,
                 const float* x, const float* t, float alpha, const float* gamma, int64_t N, int D);

// ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * w ------------------------------------------
// `rstd` [N] receives 1 / sqrt(mean(x^2) + eps).
void RmsNormForward(float* y, float* rstd, const float* x, const float* w, float eps, int64_t N,
                    int D);
void RmsNormBackward(float* dx, float* dw, const float* dy, const float* x, const float* rstd,
                     const float* w, int64_t N, int D);

// ---- Rotary position embedding (interleaved pairs, as in Meta's LLaMA) ---------------------
// x is [B, T, n_heads, head_dim]; the pair (x[2i], x[2i+1]) at position t is rotated by the
// angle t * theta^(-2i / head_dim). `cos`/`sin` are [T, head_dim / 2] tables from RopeTables.
void RopeTables(float* cos, float* sin, int T, int head_dim, float theta);
void RopeForward(float* x, const float* cos, const float* sin, int B, int T, int n_heads,
                 int head_dim);
// The inverse rotation applied to the gradient, in place.
void RopeBackward(float* dx, const float* cos, const float* sin, int B, int T, int n_heads,
                  int head_dim);

// ---- SwiGLU gate: g = silu(h1) * h3, silu(z) = z * sigmoid(z) ------------------------------
void SwigluForward(float* g, const float* h1, const float* h3, int64_t n);
void SwigluBackward(float* dh1, float* dh3, const float* dg, const float* h1, const float* h3,
                    int64_t n);

// ---- Causal grouped-query attention (flash-style: no T x T matrix is kept) -----------------
// q [B, T, Hq, hd], k and v [B, T, Hkv, hd], out [B, T, Hq, hd]; query head h reads kv head
// h / (Hq / Hkv). Scores are scaled by 1/sqrt(hd). `lse` [B, Hq, T] receives each row's
// log-sum-exp of the scaled scores, which is all the backward pass needs to rebuild the
// softmax. Score blocks go through OpenBLAS sgemm, a block of kAttnBlock query rows at a time.
// `scratch` holds AttentionScratchFloats(T) floats per OpenMP thread (omp_get_max_threads()).
constexpr int kAttnBlock = 64;
int64_t AttentionScratchFloats(int T);
void AttentionForward(float* out, float* lse, const float* q, const float* k, const float* v,
                      float* scratch, int B, int T, int n_heads, int n_kv_heads, int head_dim);
// dq, dk, dv are overwritten; `out` and `lse` are the forward's outputs.
void AttentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                       const float* lse, const float* q, const float* k, const float* v,
                       float* scratch, int B, int T, int n_heads, int n_kv_heads, int head_dim);

// ---- Cross-entropy over the vocabulary -----------------------------------------------------
// logits [N, V] are overwritten with dloss/dlogits = (softmax - onehot) * grad_scale.
// Returns the SUM over rows of -log softmax(logits)[target] (computed in double).
// Targets outside [0, V) are a programming error (checked by the data loader).
double CrossEntropyForwardBackward(float* logits, const int32_t* targets, int64_t N, int V,
                                   float grad_scale);
// Forward only: per-row losses summed (logits untouched).
double CrossEntropyForward(const float* logits, const int32_t* targets, int64_t N, int V);

// ---- Token embedding -----------------------------------------------------------------------
// x[n] = table[tokens[n]] * scale.
void EmbeddingForward(float* x, const int32_t* tokens, const float* table, float scale, int64_t N,
                      int D);
// dtable[tokens[n]] += dx[n] * scale (race-free: threads split the channels), and when
// dscale is not null, *dscale += sum_n dot(dx[n], table[tokens[n]]).
void EmbeddingBackward(float* dtable, float* dscale, const float* dx, const int32_t* tokens,
                       const float* table, float scale, int64_t N, int D);

// ---- Matrix products (OpenBLAS sgemm) with nn.Linear's layout: W is [out, in] --------------
// y[N, out] = x[N, in] @ W^T
void LinearForward(float* y, const float* x, const float* w, int64_t N, int in, int out);
// dx[N, in] = dy @ W (overwrites, or adds when accumulate); dW[out, in] += dy^T @ x.
void LinearBackward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                    int64_t N, int in, int out, bool accumulate_dx = false);

// ---- Elementwise helpers -------------------------------------------------------------------
// out = a + b
void Add(float* out, const float* a, const float* b, int64_t n);
// out += a
void AddInPlace(float* out, const float* a, int64_t n);

}  // namespace dyt::cpu
