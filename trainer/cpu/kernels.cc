#include "trainer/cpu/kernels.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "trainer/cpu/fast_math.h"

namespace dyt::cpu {
namespace {

// Parameter-gradient reductions (DyT, RMSNorm, embedding scale) split the rows into this many
// fixed chunks and add the chunk partials in chunk order, so the result does not depend on
// the thread count or on scheduling.
constexpr int kReduceChunks = 16;

struct RowChunk {
  int64_t begin, end;
};
RowChunk ChunkRows(int chunk, int64_t N) {
  return {N * chunk / kReduceChunks, N * (chunk + 1) / kReduceChunks};
}

}  // namespace

// ---- DyT ------------------------------------------------------------------------------------

void DytForward(float* y, float* t, const float* x, float alpha, const float* gamma,
                const float* beta, int64_t N, int D) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * D;
    float* yr = y + n * D;
    float* tr = t + n * D;
    if (beta) {
#pragma omp simd
      for (int i = 0; i < D; ++i) {
        const float th = FastTanh(alpha * xr[i]);
        tr[i] = th;
        yr[i] = gamma[i] * th + beta[i];
      }
    } else {
#pragma omp simd
      for (int i = 0; i < D; ++i) {
        const float th = FastTanh(alpha * xr[i]);
        tr[i] = th;
        yr[i] = gamma[i] * th;
      }
    }
  }
}

void DytBackward(float* dx, float* dalpha, float* dgamma, float* dbeta, const float* dy,
                 const float* x, const float* t, float alpha, const float* gamma, int64_t N,
                 int D) {
  std::vector<float> pg(size_t(kReduceChunks) * D, 0.0f);
  std::vector<float> pb(dbeta ? size_t(kReduceChunks) * D : 0, 0.0f);
  double pa[kReduceChunks] = {};
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kReduceChunks; ++c) {
    const RowChunk rows = ChunkRows(c, N);
    float* g = pg.data() + size_t(c) * D;
    float* b = dbeta ? pb.data() + size_t(c) * D : nullptr;
    double a = 0;
    for (int64_t n = rows.begin; n < rows.end; ++n) {
      const float* dyr = dy + n * D;
      const float* xr = x + n * D;
      const float* tr = t + n * D;
      float* dxr = dx + n * D;
      float arow = 0;
#pragma omp simd reduction(+ : arow)
      for (int i = 0; i < D; ++i) {
        const float th = tr[i];
        const float dt = dyr[i] * gamma[i] * (1.0f - th * th);  // d/d(alpha x)
        dxr[i] = dt * alpha;
        arow += dt * xr[i];
        g[i] += dyr[i] * th;
      }
      if (b) {
#pragma omp simd
        for (int i = 0; i < D; ++i) b[i] += dyr[i];
      }
      a += arow;
    }
    pa[c] = a;
  }
  double a = 0;
  for (int c = 0; c < kReduceChunks; ++c) {
    a += pa[c];
    const float* g = pg.data() + size_t(c) * D;
    for (int i = 0; i < D; ++i) dgamma[i] += g[i];
    if (dbeta) {
      const float* b = pb.data() + size_t(c) * D;
      for (int i = 0; i < D; ++i) dbeta[i] += b[i];
    }
  }
  *dalpha += float(a);
}

// ---- RMSNorm --------------------------------------------------------------------------------

void RmsNormForward(float* y, float* rstd, const float* x, const float* w, float eps, int64_t N,
                    int D) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * D;
    float* yr = y + n * D;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < D; ++i) ss += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(ss / float(D) + eps);
    rstd[n] = r;
#pragma omp simd
    for (int i = 0; i < D; ++i) yr[i] = xr[i] * r * w[i];
  }
}

void RmsNormBackward(float* dx, float* dw, const float* dy, const float* x, const float* rstd,
                     const float* w, int64_t N, int D) {
  std::vector<float> pw(size_t(kReduceChunks) * D, 0.0f);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kReduceChunks; ++c) {
    const RowChunk rows = ChunkRows(c, N);
    float* pwc = pw.data() + size_t(c) * D;
    for (int64_t n = rows.begin; n < rows.end; ++n) {
      const float* dyr = dy + n * D;
      const float* xr = x + n * D;
      float* dxr = dx + n * D;
      const float r = rstd[n];
      // dx = r * (dy*w - xhat * mean(dy*w*xhat)), xhat = x * r.
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int i = 0; i < D; ++i) dot += dyr[i] * w[i] * xr[i];
      const float m = dot * r * r / float(D);
#pragma omp simd
      for (int i = 0; i < D; ++i) {
        dxr[i] = r * (dyr[i] * w[i] - xr[i] * m);
        pwc[i] += dyr[i] * xr[i] * r;
      }
    }
  }
  for (int c = 0; c < kReduceChunks; ++c) {
    const float* pwc = pw.data() + size_t(c) * D;
    for (int i = 0; i < D; ++i) dw[i] += pwc[i];
  }
}

// ---- RoPE -----------------------------------------------------------------------------------

void RopeTables(float* cos, float* sin, int T, int head_dim, float theta) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    // Computed in double so the tables do not depend on libm's float rounding.
    const double freq = std::pow(double(theta), -2.0 * i / head_dim);
    for (int t = 0; t < T; ++t) {
      cos[t * half + i] = float(std::cos(t * freq));
      sin[t * half + i] = float(std::sin(t * freq));
    }
  }
}

namespace {
// Rotates every pair by +angle (sign = 1) or -angle (sign = -1).
void RopeRotate(float* x, const float* cos, const float* sin, int B, int T, int n_heads,
                int head_dim, float sign) {
  const int half = head_dim / 2;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const float* c = cos + t * half;
      const float* s = sin + t * half;
      float* row = x + (int64_t(b) * T + t) * n_heads * head_dim;
      for (int h = 0; h < n_heads; ++h) {
        float* v = row + h * head_dim;
#pragma omp simd
        for (int i = 0; i < half; ++i) {
          const float x0 = v[2 * i], x1 = v[2 * i + 1];
          const float si = sign * s[i];
          v[2 * i] = x0 * c[i] - x1 * si;
          v[2 * i + 1] = x0 * si + x1 * c[i];
        }
      }
    }
  }
}
}  // namespace

void RopeForward(float* x, const float* cos, const float* sin, int B, int T, int n_heads,
                 int head_dim) {
  RopeRotate(x, cos, sin, B, T, n_heads, head_dim, 1.0f);
}

void RopeBackward(float* dx, const float* cos, const float* sin, int B, int T, int n_heads,
                  int head_dim) {
  // A rotation's Jacobian is the rotation itself; its transpose is the inverse rotation.
  RopeRotate(dx, cos, sin, B, T, n_heads, head_dim, -1.0f);
}

// ---- SwiGLU ---------------------------------------------------------------------------------

void SwigluForward(float* g, const float* h1, const float* h3, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float a = h1[i];
    g[i] = a * FastSigmoid(a) * h3[i];
  }
}

void SwigluBackward(float* dh1, float* dh3, const float* dg, const float* h1, const float* h3,
                    int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float a = h1[i];
    const float s = FastSigmoid(a);
    const float silu = a * s;
    dh3[i] = dg[i] * silu;
    // d silu / da = s * (1 + a * (1 - s))
    dh1[i] = dg[i] * h3[i] * s * (1.0f + a * (1.0f - s));
  }
}

// ---- Attention ------------------------------------------------------------------------------

int64_t AttentionScratchFloats(int T) { return 2 * int64_t(kAttnBlock) * T; }

void AttentionForward(float* out, float* lse, const float* q, const float* k, const float* v,
                      float* scratch, int B, int T, int n_heads, int n_kv_heads, int head_dim) {
  const int hd = head_dim, D = n_heads * hd, KVD = n_kv_heads * hd;
  const int group = n_heads / n_kv_heads;
  const float scale = 1.0f / std::sqrt(float(hd));
  const int n_blocks = (T + kAttnBlock - 1) / kAttnBlock;
  // Work items are (b, h, query block); later blocks cost more, so schedule dynamically.
  // Every item writes disjoint rows, so the result is independent of the schedule.
#pragma omp parallel for collapse(3) schedule(dynamic, 1)
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < n_heads; ++h) {
      for (int blk = 0; blk < n_blocks; ++blk) {
        float* S = scratch + omp_get_thread_num() * AttentionScratchFloats(T);
        const int t0 = blk * kAttnBlock, t1 = std::min(T, t0 + kAttnBlock), rows = t1 - t0;
        const int kv_len = t1;  // causal: rows t0..t1-1 see keys 0..t1-1
        const float* Q = q + (int64_t(b) * T + t0) * D + h * hd;
        const float* K = k + int64_t(b) * T * KVD + (h / group) * hd;
        const float* V = v + int64_t(b) * T * KVD + (h / group) * hd;
        // S[rows, kv_len] = scale * Q K^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kv_len, hd, scale, Q, D, K, KVD,
                    0.0f, S, kv_len);
        float* L = lse + (int64_t(b) * n_heads + h) * T;
        for (int r = 0; r < rows; ++r) {
          float* s = S + int64_t(r) * kv_len;
          const int valid = t0 + r + 1;
          float mx = -INFINITY;
          for (int j = 0; j < valid; ++j) mx = std::max(mx, s[j]);
          float sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int j = 0; j < valid; ++j) {
            const float e = FastExp(s[j] - mx);
            s[j] = e;
            sum += e;
          }
          const float inv = 1.0f / sum;
#pragma omp simd
          for (int j = 0; j < valid; ++j) s[j] *= inv;
          for (int j = valid; j < kv_len; ++j) s[j] = 0.0f;
          L[t0 + r] = mx + std::log(sum);
        }
        // O[rows, hd] = P V
        float* O = out + (int64_t(b) * T + t0) * D + h * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, kv_len, 1.0f, S, kv_len, V,
                    KVD, 0.0f, O, D);
      }
    }
  }
}

void AttentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                       const float* lse, const float* q, const float* k, const float* v,
                       float* scratch, int B, int T, int n_heads, int n_kv_heads, int head_dim) {
  const int hd = head_dim, D = n_heads * hd, KVD = n_kv_heads * hd;
  const int group = n_heads / n_kv_heads;
  const float scale = 1.0f / std::sqrt(float(hd));
  const int n_blocks = (T + kAttnBlock - 1) / kAttnBlock;
  // One work item per (b, kv head): it owns dk and dv of that kv head, so the query heads of
  // its group add into them in a fixed order with no races.
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int b = 0; b < B; ++b) {
    for (int kh = 0; kh < n_kv_heads; ++kh) {
      float* P = scratch + omp_get_thread_num() * AttentionScratchFloats(T);
      float* dP = P + int64_t(kAttnBlock) * T;
      const float* K = k + int64_t(b) * T * KVD + kh * hd;
      const float* V = v + int64_t(b) * T * KVD + kh * hd;
      float* dK = dk + int64_t(b) * T * KVD + kh * hd;
      float* dV = dv + int64_t(b) * T * KVD + kh * hd;
      for (int t = 0; t < T; ++t) {
        std::fill(dK + int64_t(t) * KVD, dK + int64_t(t) * KVD + hd, 0.0f);
        std::fill(dV + int64_t(t) * KVD, dV + int64_t(t) * KVD + hd, 0.0f);
      }
      for (int h = kh * group; h < (kh + 1) * group; ++h) {
        const float* L = lse + (int64_t(b) * n_heads + h) * T;
        for (int blk = 0; blk < n_blocks; ++blk) {
          const int t0 = blk * kAttnBlock, t1 = std::min(T, t0 + kAttnBlock), rows = t1 - t0;
          const int kv_len = t1;
          const int64_t row0 = (int64_t(b) * T + t0) * D + h * hd;
          const float* Q = q + row0;
          const float* dO = dout + row0;
          const float* O = out + row0;
          float* dQ = dq + row0;
          // Rebuild P = exp(scale * Q K^T - lse) for this block.
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kv_len, hd, scale, Q, D, K,
                      KVD, 0.0f, P, kv_len);
          // dP = dO V^T
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kv_len, hd, 1.0f, dO, D, V,
                      KVD, 0.0f, dP, kv_len);
          for (int r = 0; r < rows; ++r) {
            float* p = P + int64_t(r) * kv_len;
            float* dp = dP + int64_t(r) * kv_len;
            const int valid = t0 + r + 1;
            const float l = L[t0 + r];
            // sum_j P_j dP_j equals dO . O for this row (O = P V).
            float delta = 0;
            const float* o = O + int64_t(r) * D;
            const float* dor = dO + int64_t(r) * D;
#pragma omp simd reduction(+ : delta)
            for (int i = 0; i < hd; ++i) delta += o[i] * dor[i];
#pragma omp simd
            for (int j = 0; j < valid; ++j) {
              const float pj = FastExp(p[j] - l);
              p[j] = pj;
              dp[j] = pj * (dp[j] - delta) * scale;  // dS, with the score scale folded in
            }
            for (int j = valid; j < kv_len; ++j) p[j] = dp[j] = 0.0f;
          }
          // dQ = dS K ; dK += dS^T Q ; dV += P^T dO
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, kv_len, 1.0f, dP, kv_len,
                      K, KVD, 0.0f, dQ, D);
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kv_len, hd, rows, 1.0f, dP, kv_len,
                      Q, D, 1.0f, dK, KVD);
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kv_len, hd, rows, 1.0f, P, kv_len,
                      dO, D, 1.0f, dV, KVD);
        }
      }
    }
  }
}

// ---- Cross-entropy --------------------------------------------------------------------------

double CrossEntropyForwardBackward(float* logits, const int32_t* targets, int64_t N, int V,
                                   float grad_scale) {
  std::vector<double> row_loss(N);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* x = logits + n * V;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < V; ++i) mx = std::max(mx, x[i]);
    const int tgt = targets[n];
    const double target_logit = double(x[tgt]) - double(mx);
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < V; ++i) {
      const float e = FastExp(x[i] - mx);
      x[i] = e;
      sum += e;
    }
    row_loss[n] = double(std::log(sum)) - target_logit;  // -log softmax(x)[target]
    const float inv = grad_scale / sum;
#pragma omp simd
    for (int i = 0; i < V; ++i) x[i] *= inv;
    x[tgt] -= grad_scale;
  }
  double total = 0;
  for (int64_t n = 0; n < N; ++n) total += row_loss[n];
  return total;
}

double CrossEntropyForward(const float* logits, const int32_t* targets, int64_t N, int V) {
  std::vector<double> row_loss(N);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = logits + n * V;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < V; ++i) mx = std::max(mx, x[i]);
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < V; ++i) sum += FastExp(x[i] - mx);
    row_loss[n] = double(std::log(sum)) + double(mx) - double(x[targets[n]]);
  }
  double total = 0;
  for (int64_t n = 0; n < N; ++n) total += row_loss[n];
  return total;
}

// ---- Embedding ------------------------------------------------------------------------------

void EmbeddingForward(float* x, const int32_t* tokens, const float* table, float scale, int64_t N,
                      int D) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* e = table + int64_t(tokens[n]) * D;
    float* xr = x + n * D;
#pragma omp simd
    for (int i = 0; i < D; ++i) xr[i] = e[i] * scale;
  }
}

void EmbeddingBackward(float* dtable, float* dscale, const float* dx, const int32_t* tokens,
                       const float* table, float scale, int64_t N, int D) {
  // Threads own disjoint channel ranges, so repeated tokens never race and each element is
  // summed in row order.
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
    const int c0 = int(int64_t(D) * tid / nt), c1 = int(int64_t(D) * (tid + 1) / nt);
    for (int64_t n = 0; n < N; ++n) {
      float* g = dtable + int64_t(tokens[n]) * D;
      const float* d = dx + n * D;
#pragma omp simd
      for (int i = c0; i < c1; ++i) g[i] += d[i] * scale;
    }
  }
  if (dscale) {
    double part[kReduceChunks] = {};
#pragma omp parallel for schedule(static)
    for (int c = 0; c < kReduceChunks; ++c) {
      const RowChunk rows = ChunkRows(c, N);
      double acc = 0;
      for (int64_t n = rows.begin; n < rows.end; ++n) {
        const float* e = table + int64_t(tokens[n]) * D;
        const float* d = dx + n * D;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < D; ++i) dot += d[i] * e[i];
        acc += dot;
      }
      part[c] = acc;
    }
    double s = 0;
    for (int c = 0; c < kReduceChunks; ++c) s += part[c];
    *dscale += float(s);
  }
}

// ---- Linear ---------------------------------------------------------------------------------

void LinearForward(float* y, const float* x, const float* w, int64_t N, int in, int out) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(N), out, in, 1.0f, x, in, w, in, 0.0f, y,
              out);
}

void LinearBackward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                    int64_t N, int in, int out, bool accumulate_dx) {
  if (dx) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(N), in, out, 1.0f, dy, out, w, in,
                accumulate_dx ? 1.0f : 0.0f, dx, in);
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, int(N), 1.0f, dy, out, x, in, 1.0f,
              dw, in);
}

// ---- Elementwise ----------------------------------------------------------------------------

void Add(float* out, const float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void AddInPlace(float* out, const float* a, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] += a[i];
}

}  // namespace dyt::cpu
