// Flash-attention forward (FlashAttention-2 style). Design:
//
// * Grid: a block per (query tile of kBlockRows = 64 rows, query head, batch); the last query
//   tiles (the most kv tiles) are scheduled first. 4 warps, each owning 16 query rows (one m16
//   tile): a warp never needs another warp's rows, so the only block-wide syncs are around
//   the shared K/V buffers.
// * Shared memory: Q [64][hd + 8], K and V [2][64][hd + 8] (double-buffered): 45 KiB at
//   hd = 64, 85 KiB at hd = 128 (dynamic, opted in above 48 KiB). cp.async streams kv tile
//   j + 1 while tile j is computed; rows beyond T are zero-filled, never read.
// * Per kv tile (64 keys): S = Q K^T (Q fragments kept in registers, K through ldmatrix),
//   the causal mask (key > query -> -inf; keys >= T are always > every valid query), the online
//   softmax in registers (row max / sum over the quad of lanes sharing a row), O rescaled, then
//   O += P V with P's bf16 A fragments taken straight from S's accumulators (attention_common.cuh
//   explains the C -> A identity) and V through ldmatrix.trans. Only tiles up to the diagonal
//   are visited; every row keeps at least key 0, so no row is all -inf.
// * Epilogue: O / l as bf16 staged through the warp's own rows of the Q buffer (it is done with
//   them), then 16-byte stores; lse = m * scale + log(l) for rows < T.
#include <cmath>

#include "trainer/cuda/attention_common.cuh"
#include "trainer/cuda/attention_kernels.h"
#include "trainer/cuda/cuda_status.h"

namespace dyt::cuda {

namespace {

using attn::kBlockRows;
using attn::kThreads;

template <int kHd>
constexpr int ForwardSmemBytes() {
  return attn::TileBytes<kHd>(kBlockRows) * 5;  // Q, 2 x K, 2 x V
}

template <int kHd>
__global__ void __launch_bounds__(kThreads)
    FlashForwardKernel(bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ q,
                       const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int H,
                       int group, int64_t ld_q, int64_t ld_kv, int64_t ld_o, float scale,
                       float scale_log2) {
  constexpr int kLd = attn::kLds<kHd>;
  constexpr int kBc = kBlockRows;  // keys per kv tile
  DYT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + kBlockRows * kLd;  // [2][kBc][kLd]
  bf16* sV = sK + 2 * kBc * kLd;     // [2][kBc][kLd]

  const int qt = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z;
  const int q0 = qt * kBlockRows;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;

  const int64_t row_b = static_cast<int64_t>(b) * T;  // row of token (b, 0)
  const bf16* k_head = k + row_b * ld_kv + static_cast<int64_t>(h / group) * kHd;
  const bf16* v_head = v + row_b * ld_kv + static_cast<int64_t>(h / group) * kHd;
  const int kv_end = min(T, q0 + kBlockRows);  // keys any row of this block sees: [0, kv_end)
  const int n_tiles = (kv_end + kBc - 1) / kBc;

  attn::LoadTileAsync<kBlockRows, kHd>(sQ, q + (row_b + q0) * ld_q + static_cast<int64_t>(h) * kHd,
                                       ld_q, T - q0, tid);
  attn::LoadTileAsync<kBc, kHd>(sK, k_head, ld_kv, T, tid);
  attn::LoadTileAsync<kBc, kHd>(sV, v_head, ld_kv, T, tid);
  attn::CpAsyncCommit();

  uint32_t qf[kHd / 16][4];
  float o[kHd / 8][4];
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY};  // running row max of the raw scores (rows g, g + 8)
  float l[2] = {0.f, 0.f};              // this lane's share of the running row sums
  const int row0 = q0 + warp * 16 + g;  // this lane's rows: row0, row0 + 8

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) {
      const int kv_next = (j + 1) * kBc;
      const int nb = buf ^ 1;
      attn::LoadTileAsync<kBc, kHd>(sK + nb * kBc * kLd, k_head + kv_next * ld_kv, ld_kv,
                                    T - kv_next, tid);
      attn::LoadTileAsync<kBc, kHd>(sV + nb * kBc * kLd, v_head + kv_next * ld_kv, ld_kv,
                                    T - kv_next, tid);
    }
    attn::CpAsyncCommit();  // possibly empty: keeps "all but the newest group" = tile j
    attn::CpAsyncWait<1>();
    __syncthreads();

    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < kHd / 16; ++kk) {
        attn::LdMatrixX4(qf[kk],
                         attn::SmemAddr(sQ + attn::LdmOffsetA(lane, warp * 16, kk * 16, kLd)));
      }
    }
    const bf16* k_s = sK + buf * kBc * kLd;
    const bf16* v_s = sV + buf * kBc * kLd;

    // S = Q K^T: 16 rows x kBc keys per warp.
    float s[kBc / 8][4];
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kHd / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kBc / 16; ++np) {
        uint32_t kb[4];
        attn::LdMatrixX4(kb,
                         attn::SmemAddr(k_s + attn::LdmOffsetBRows(lane, np * 16, kk * 16, kLd)));
        attn::Mma(s[2 * np], qf[kk], kb[0], kb[1]);
        attn::Mma(s[2 * np + 1], qf[kk], kb[2], kb[3]);
      }
    }

    // Causal mask: key c > query row r -> -inf (covers keys >= T as well).
    const int kv0 = j * kBc;
    if (kv0 + kBc - 1 > q0 + warp * 16) {
#pragma unroll
      for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int c = kv0 + n * 8 + 2 * t4 + (i & 1);
          const int r = row0 + (i >> 1) * 8;
          if (c > r) s[n][i] = -INFINITY;
        }
      }
    }

    // Online softmax, per row half (rr = 0: row g, rr = 1: row g + 8).
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      float mx = m[rr];
#pragma unroll
      for (int n = 0; n < kBc / 8; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * rr], s[n][2 * rr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      // mx is finite once any key is unmasked; the guard keeps -inf - -inf out regardless.
      const float m_scaled = mx == -INFINITY ? 0.f : mx * scale_log2;
      const float alpha = exp2f(m[rr] * scale_log2 - m_scaled);  // 0 on the first tile
      m[rr] = mx;
      l[rr] *= alpha;
#pragma unroll
      for (int n = 0; n < kHd / 8; ++n) {
        o[n][2 * rr] *= alpha;
        o[n][2 * rr + 1] *= alpha;
      }
#pragma unroll
      for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
        for (int i = 2 * rr; i < 2 * rr + 2; ++i) {
          const float p = exp2f(s[n][i] * scale_log2 - m_scaled);
          s[n][i] = p;
          l[rr] += p;
        }
      }
    }

    // O += P V: P's A fragments from the accumulators, V's B fragments by ldmatrix.trans.
    attn::MmaAccSmemTrans<kBc, kHd, kLd>(o, s, v_s, lane);
    __syncthreads();  // every warp is done with buffer `buf` before it is refilled
  }

  // Epilogue: the full row sums, O / l, lse.
  float inv[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);
    inv[rr] = 1.f / l[rr];
    const int r = row0 + rr * 8;
    if (t4 == 0 && r < T) {
      lse[(static_cast<int64_t>(b) * H + h) * T + r] = m[rr] * scale + logf(l[rr]);
    }
  }
  bf16* s_rows = sQ + warp * 16 * kLd;  // this warp's own Q rows, no longer needed
  attn::AccToSmem<kHd>(s_rows, o, inv[0], inv[1], lane);
  __syncwarp();
  const int w0 = q0 + warp * 16;
  attn::StoreWarpRows<kHd>(out + (row_b + w0) * ld_o + static_cast<int64_t>(h) * kHd, ld_o, s_rows,
                           T - w0, lane);
}

template <int kHd>
Status LaunchForward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                     const AttentionShape& s, cudaStream_t stream) {
  constexpr int kSmem = ForwardSmemBytes<kHd>();
  DYT_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      FlashForwardKernel<kHd>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  const float scale = 1.f / std::sqrt(static_cast<float>(kHd));
  const dim3 grid(static_cast<unsigned>((s.T + kBlockRows - 1) / kBlockRows),
                  static_cast<unsigned>(s.n_heads), static_cast<unsigned>(s.B));
  DYT_LAUNCH(FlashForwardKernel<kHd>, grid, kThreads, kSmem, stream, out, lse, q, k, v, s.T,
             s.n_heads, s.n_heads / s.n_kv_heads, s.ld_q, s.ld_kv, s.ld_o, scale,
             scale * attn::kLog2e);
  return LaunchStatus("FlashForwardKernel");
}

}  // namespace

Status FlashAttentionForward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const AttentionShape& shape, cudaStream_t stream) {
  constexpr const char* fn = "FlashAttentionForward";
  DYT_RETURN_IF_ERROR(attn::CheckAttentionShape(fn, shape));
  const int64_t hd = shape.head_dim;
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_q", shape.ld_q, shape.n_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_kv", shape.ld_kv, shape.n_kv_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_o", shape.ld_o, shape.n_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "out", out));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "lse", lse));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "q", q));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "k", k));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "v", v));
  if (shape.head_dim == 64) return LaunchForward<64>(out, lse, q, k, v, shape, stream);
  return LaunchForward<128>(out, lse, q, k, v, shape, stream);
}

}  // namespace dyt::cuda
