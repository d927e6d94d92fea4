// Host emulation of the CUDA backend's kernels (tests/cuda/emu/README.md; the products of
// gemm.h are in gemm_emu.cc): each entry point of trainer/cuda/*_kernels.h and the cast is
// implemented on the CPU through its fp32 twin in trainer/cpu/kernels.h, honouring the GPU
// contract: bf16 inputs are read as the floats they hold, every bf16 output is rounded once (to
// nearest even), fp32 outputs and accumulations stay fp32, strides (ld) and in-place aliasing are
// as the headers allow, and parameter gradients are added (+=). What the emulation does not
// reproduce is each kernel's own arithmetic order; those kernels are checked against the same twins
// on a GPU and on the SIMT emulator (tests/cuda/simt), which runs their own source.
#include <cuda_bf16.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/cuda/emu/host_tensors.h"
#include "trainer/cpu/kernels.h"
#include "trainer/cuda/adamw_kernels.h"
#include "trainer/cuda/attention_kernels.h"
#include "trainer/cuda/cross_entropy_kernels.h"
#include "trainer/cuda/dyt_kernels.h"
#include "trainer/cuda/embedding_kernels.h"
#include "trainer/cuda/gemm.h"  // CastFp32ToBf16
#include "trainer/cuda/reduce_kernels.h"
#include "trainer/cuda/rmsnorm_kernels.h"
#include "trainer/cuda/rope_kernels.h"
#include "trainer/cuda/swiglu_kernels.h"
#include "trainer/cuda/zero_kernels.h"

namespace dyt::cuda {
namespace {

using emu::StoreBf16;
using emu::ToFloat;

// Rows [N] of `width` elements at stride `ld`, gathered into a contiguous [N, width] array.
std::vector<float> Gather(const bf16* p, int64_t ld, int64_t N, int64_t width) {
  std::vector<float> out(static_cast<size_t>(N * width));
  for (int64_t r = 0; r < N; ++r) {
    for (int64_t c = 0; c < width; ++c)
      out[size_t(r * width + c)] = __bfloat162float(p[r * ld + c]);
  }
  return out;
}
void Scatter(bf16* p, int64_t ld, const std::vector<float>& v, int64_t N, int64_t width) {
  for (int64_t r = 0; r < N; ++r) StoreBf16(p + r * ld, v.data() + r * width, width);
}
float ValueOr1(const float* p) { return p != nullptr ? *p : 1.0f; }

// dx = dr + term (dr may be null and may alias dx), rounded to bf16.
void StoreWithResidual(bf16* dx, const bf16* dr, const std::vector<float>& term, int64_t n) {
  std::vector<float> sum(term);
  if (dr != nullptr) {
    for (int64_t i = 0; i < n; ++i) sum[size_t(i)] += __bfloat162float(dr[i]);
  }
  StoreBf16(dx, sum.data(), n);
}

}  // namespace

// ---- DyT ---------------------------------------------------------------------------------------
Status DytForward(bf16* y, const float* x, const float* alpha, const float* gamma,
                  const float* beta, int64_t N, int D, cudaStream_t, TanhMode) {
  std::vector<float> yf(static_cast<size_t>(N * D)), t(yf.size());
  cpu::DytForward(yf.data(), t.data(), x, *alpha, gamma, beta, N, D);
  StoreBf16(y, yf.data(), N * D);
  return Status::Ok();
}
Status ResidualDytForward(float* r_out, bf16* y, const float* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode mode) {
  for (int64_t i = 0; i < N * D; ++i) r_out[i] = r[i] + __bfloat162float(d[i]);
  return DytForward(y, r_out, alpha, gamma, beta, N, D, stream, mode);
}
size_t DytBackwardScratchBytes(int64_t, int) { return 256; }
Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const float* x, const bf16* dr, const float* alpha, const float* gamma,
                   int64_t N, int D, void*, size_t, cudaStream_t, TanhMode) {
  std::vector<float> y(static_cast<size_t>(N * D)), t(y.size()), dxf(y.size());
  cpu::DytForward(y.data(), t.data(), x, *alpha, gamma, nullptr, N, D);
  const std::vector<float> dyf = ToFloat(dy, N * D);
  cpu::DytBackward(dxf.data(), dalpha, dgamma, dbeta, dyf.data(), x, t.data(), *alpha, gamma, N, D);
  StoreWithResidual(dx, dr, dxf, N * D);
  return Status::Ok();
}

// ---- RMSNorm -----------------------------------------------------------------------------------
Status RmsNormForward(bf16* y, float* rstd, const float* x, const float* w, float eps, int64_t N,
                      int D, cudaStream_t) {
  std::vector<float> yf(static_cast<size_t>(N * D)), r(static_cast<size_t>(N));
  cpu::RmsNormForward(yf.data(), r.data(), x, w, eps, N, D);
  StoreBf16(y, yf.data(), N * D);
  if (rstd != nullptr) std::memcpy(rstd, r.data(), r.size() * sizeof(float));
  return Status::Ok();
}
Status ResidualRmsNormForward(float* r_out, bf16* y, float* rstd, const float* r, const bf16* d,
                              const float* w, float eps, int64_t N, int D, cudaStream_t stream) {
  for (int64_t i = 0; i < N * D; ++i) r_out[i] = r[i] + __bfloat162float(d[i]);
  return RmsNormForward(y, rstd, r_out, w, eps, N, D, stream);
}
size_t RmsNormBackwardScratchBytes(int64_t, int) { return 256; }
Status RmsNormBackward(bf16* dx, float* dw, const bf16* dy, const float* x, const float* rstd,
                       const float* w, const bf16* dr, int64_t N, int D, void*, size_t,
                       cudaStream_t) {
  std::vector<float> dxf(static_cast<size_t>(N * D));
  const std::vector<float> dyf = ToFloat(dy, N * D);
  cpu::RmsNormBackward(dxf.data(), dw, dyf.data(), x, rstd, w, N, D);
  StoreWithResidual(dx, dr, dxf, N * D);
  return Status::Ok();
}

// ---- RoPE --------------------------------------------------------------------------------------
Status RopeForward(bf16* x, int64_t ld, const float* cos, const float* sin, int B, int T,
                   int n_heads, int head_dim, cudaStream_t) {
  const int64_t N = int64_t(B) * T, w = int64_t(n_heads) * head_dim;
  std::vector<float> v = Gather(x, ld, N, w);
  cpu::RopeForward(v.data(), cos, sin, B, T, n_heads, head_dim);
  Scatter(x, ld, v, N, w);
  return Status::Ok();
}
Status RopeBackward(bf16* dx, int64_t ld, const float* cos, const float* sin, int B, int T,
                    int n_heads, int head_dim, cudaStream_t) {
  const int64_t N = int64_t(B) * T, w = int64_t(n_heads) * head_dim;
  std::vector<float> v = Gather(dx, ld, N, w);
  cpu::RopeBackward(v.data(), cos, sin, B, T, n_heads, head_dim);
  Scatter(dx, ld, v, N, w);
  return Status::Ok();
}

// ---- SwiGLU ------------------------------------------------------------------------------------
Status SwigluForward(bf16* g, const bf16* h1, const bf16* h3, int64_t n, cudaStream_t) {
  const std::vector<float> a = ToFloat(h1, n), b = ToFloat(h3, n);
  std::vector<float> out(static_cast<size_t>(n));
  cpu::SwigluForward(out.data(), a.data(), b.data(), n);
  StoreBf16(g, out.data(), n);
  return Status::Ok();
}
Status SwigluBackward(bf16* dh1, bf16* dh3, const bf16* dg, const bf16* h1, const bf16* h3,
                      int64_t n, cudaStream_t) {
  const std::vector<float> g = ToFloat(dg, n), a = ToFloat(h1, n), b = ToFloat(h3, n);
  std::vector<float> d1(static_cast<size_t>(n)), d3(static_cast<size_t>(n));
  cpu::SwigluBackward(d1.data(), d3.data(), g.data(), a.data(), b.data(), n);
  StoreBf16(dh1, d1.data(), n);
  StoreBf16(dh3, d3.data(), n);
  return Status::Ok();
}

// ---- attention ---------------------------------------------------------------------------------
namespace {
std::vector<float> AttentionScratch(int T) {  // per OpenMP thread, as the twin indexes it
  return std::vector<float>(static_cast<size_t>(cpu::AttentionScratchFloats(T)) *
                            static_cast<size_t>(omp_get_max_threads()));
}
}  // namespace

Status FlashAttentionForward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const AttentionShape& s, cudaStream_t) {
  const int64_t N = int64_t(s.B) * s.T;
  const int64_t qw = int64_t(s.n_heads) * s.head_dim, kvw = int64_t(s.n_kv_heads) * s.head_dim;
  const std::vector<float> qf = Gather(q, s.ld_q, N, qw), kf = Gather(k, s.ld_kv, N, kvw),
                           vf = Gather(v, s.ld_kv, N, kvw);
  std::vector<float> o(static_cast<size_t>(N * qw)), scratch = AttentionScratch(s.T);
  cpu::AttentionForward(o.data(), lse, qf.data(), kf.data(), vf.data(), scratch.data(), s.B, s.T,
                        s.n_heads, s.n_kv_heads, s.head_dim);
  Scatter(out, s.ld_o, o, N, qw);
  return Status::Ok();
}
size_t FlashAttentionBackwardScratchBytes(const AttentionShape&, AttentionBackwardMode) {
  return 256;
}
Status FlashAttentionBackward(bf16* dq, bf16* dk, bf16* dv, int64_t ld_dq, int64_t ld_dkv,
                              const bf16* dout, const bf16* out, const float* lse, const bf16* q,
                              const bf16* k, const bf16* v, const AttentionShape& s, void*, size_t,
                              cudaStream_t, AttentionBackwardMode, RopeTables rope) {
  const int64_t N = int64_t(s.B) * s.T;
  const int64_t qw = int64_t(s.n_heads) * s.head_dim, kvw = int64_t(s.n_kv_heads) * s.head_dim;
  const std::vector<float> qf = Gather(q, s.ld_q, N, qw), kf = Gather(k, s.ld_kv, N, kvw),
                           vf = Gather(v, s.ld_kv, N, kvw), of = Gather(out, s.ld_o, N, qw),
                           dof = Gather(dout, s.ld_o, N, qw);
  std::vector<float> dqf(static_cast<size_t>(N * qw)), dkf(static_cast<size_t>(N * kvw)),
      dvf(static_cast<size_t>(N * kvw));
  std::vector<float> scratch = AttentionScratch(s.T);
  cpu::AttentionBackward(dqf.data(), dkf.data(), dvf.data(), dof.data(), of.data(), lse, qf.data(),
                         kf.data(), vf.data(), scratch.data(), s.B, s.T, s.n_heads, s.n_kv_heads,
                         s.head_dim);
  if (rope.cos != nullptr) {
    cpu::RopeBackward(dqf.data(), rope.cos, rope.sin, s.B, s.T, s.n_heads, s.head_dim);
    cpu::RopeBackward(dkf.data(), rope.cos, rope.sin, s.B, s.T, s.n_kv_heads, s.head_dim);
  }
  Scatter(dq, ld_dq, dqf, N, qw);
  Scatter(dk, ld_dkv, dkf, N, kvw);
  Scatter(dv, ld_dkv, dvf, N, kvw);
  return Status::Ok();
}

// ---- embedding ---------------------------------------------------------------------------------
Status EmbeddingForward(float* x, const int32_t* tokens, const float* table, const float* scale,
                        int64_t N, int D, cudaStream_t) {
  cpu::EmbeddingForward(x, tokens, table, ValueOr1(scale), N, D);
  return Status::Ok();
}
size_t EmbeddingBackwardScratchBytes(int n_unique) { return size_t(std::max(n_unique, 1)) * 8; }
Status EmbeddingBackward(float* dtable, float* dscale, const bf16* dx, const EmbeddingIndex& index,
                         const float* table, const float* scale, int64_t N, int D, void*, size_t,
                         cudaStream_t) {
  // The tokens, rebuilt from the grouping the caller uploaded (so the index is checked too).
  std::vector<int32_t> tokens(static_cast<size_t>(N), -1);
  for (int g = 0; g < index.n_unique; ++g) {
    for (int32_t i = index.offsets[g]; i < index.offsets[g + 1]; ++i) {
      tokens[size_t(index.positions[i])] = index.unique[g];
    }
  }
  for (int32_t t : tokens) {
    if (t < 0) return Internal("EmbeddingBackward (emulated): a position is in no group");
  }
  const std::vector<float> dxf = ToFloat(dx, N * D);
  cpu::EmbeddingBackward(dtable, dscale, dxf.data(), tokens.data(), table, ValueOr1(scale), N, D);
  return Status::Ok();
}

// ---- cross-entropy -----------------------------------------------------------------------------
Status CrossEntropyForwardBackward(bf16* logits, float* losses, const int32_t* targets, int64_t N,
                                   int V, float grad_scale, cudaStream_t) {
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> row = ToFloat(logits + n * V, V);
    losses[n] = float(cpu::CrossEntropyForwardBackward(row.data(), targets + n, 1, V, grad_scale));
    StoreBf16(logits + n * V, row.data(), V);
  }
  return Status::Ok();
}
Status CrossEntropyForward(const bf16* logits, float* losses, const int32_t* targets, int64_t N,
                           int V, cudaStream_t) {
  for (int64_t n = 0; n < N; ++n) {
    const std::vector<float> row = ToFloat(logits + n * V, V);
    losses[n] = float(cpu::CrossEntropyForward(row.data(), targets + n, 1, V));
  }
  return Status::Ok();
}

// ---- reductions, cast, AdamW -------------------------------------------------------------------
size_t ReduceScratchBytes(int64_t n) { return n > 0 ? 8 : 0; }
Status SumDevice(double* out, const float* x, int64_t n, void*, size_t, cudaStream_t) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]);
  *out = s;
  return Status::Ok();
}
Status SumSquaresDevice(double* out, const float* x, int64_t n, void*, size_t, cudaStream_t) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  *out = s;
  return Status::Ok();
}
Status ZeroRanges(float* base, const int64_t* begin, const int64_t* prefix, int count,
                  int64_t total, cudaStream_t) {
  if (total == 0) return Status::Ok();  // nothing is read, as on the GPU
  if (count <= 0 || total < 0 || prefix[0] != 0 || prefix[count] != total) {
    return InvalidArgument("ZeroRanges: bad range table");
  }
  for (int r = 0; r < count; ++r) {
    std::fill(base + begin[r], base + begin[r] + (prefix[r + 1] - prefix[r]), 0.f);
  }
  return Status::Ok();
}

Status CastFp32ToBf16(bf16* dst, const float* src, int64_t n, cudaStream_t) {
  StoreBf16(dst, src, n);
  return Status::Ok();
}
Status AdamWUpdate(float* params, bf16* params_bf16, const float* grads, float* m, float* v,
                   int64_t n, const AdamWScalars& s, cudaStream_t, const AdamWDecayRuns* runs) {
  // The documented per-element sequence (adamw_kernels.h); this file is compiled without
  // floating-point contraction, so each product and sum is rounded, as on the GPU.
  std::vector<float> decay(static_cast<size_t>(n), s.decay);
  if (runs != nullptr) {
    // Stricter than the GPU, which never reads the table on the host (a bad one gives wrong
    // decays there): the emulation stops a backend that builds a bad one.
    const bool ordered =
        runs->count >= 1 && std::is_sorted(runs->bounds, runs->bounds + runs->count + 1);
    if (!ordered || runs->bounds[0] != 0 || runs->bounds[runs->count] != n) {
      return InvalidArgument("AdamWUpdate: bad decay runs");
    }
    for (int r = 0; r < runs->count; ++r) {
      std::fill(decay.begin() + runs->bounds[r], decay.begin() + runs->bounds[r + 1],
                runs->decays[r] != 0 ? s.decay : 1.0f);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i] * s.grad_scale;
    float p = params[i] * decay[size_t(i)];
    m[i] = m[i] * s.beta1 + g * (1.0f - s.beta1);
    v[i] = v[i] * s.beta2 + (1.0f - s.beta2) * g * g;
    p += -s.step_size * (m[i] / (std::sqrt(v[i]) / s.bc2_sqrt + s.eps));
    params[i] = p;
    if (params_bf16 != nullptr) params_bf16[i] = __float2bfloat16_rn(p);
  }
  return Status::Ok();
}

}  // namespace dyt::cuda
