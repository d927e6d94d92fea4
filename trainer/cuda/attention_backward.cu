// Flash-attention backward, deterministic (no float atomics). Three launches:
//
// 1. RowDotKernel: Dvec[b, h, t] = dot(dout row, out row) in fp32 (into the caller's scratch);
//    a warp per (token, head). It equals sum_j P_j dP_j of the row.
// 2. DkDvKernel: a block per (kv tile of 64 keys, kv head, batch); 4 warps each own 16 keys.
//    K and V of the tile stay in shared memory; the block walks the query heads of its GQA
//    group and, for each, the query tiles (kBq rows) at or after the kv tile, streaming Q, dO,
//    lse and Dvec through double-buffered shared memory (cp.async). Per step, per warp, with
//    the key as the M dimension (so every product has its A operand in registers or in the
//    warp's own shared rows and no transpose goes through shared memory):
//      S^T  = K Q^T          (A: K rows by ldmatrix; B: Q by ldmatrix)
//      P^T  = exp(scale S^T - lse[q]), 0 where q < key or q >= T
//      dP^T = V dO^T         (A: V rows; B: dO by ldmatrix)
//      dV  += P^T dO         (A: P^T from the accumulators; B: dO by ldmatrix.trans)
//      dS^T = P^T (dP^T - Dvec[q])
//      dK  += dS^T Q         (A: dS^T from the accumulators; B: Q by ldmatrix.trans)
//    then dK *= scale. Sums run in a fixed order (heads, then query tiles, then the mma's own
//    order), so the result is the same bits every run.
// 3. DqKernel: a block per (query tile of 64 rows, head, batch); 4 warps x 16 rows; Q and dO
//    in shared memory, K and V tiles up to the diagonal streamed (double-buffered):
//      S = Q K^T, P = exp(scale S - lse) (0 where key > row), dP = dO V^T (B: V by ldmatrix),
//      dS = P (dP - Dvec), dQ += dS K (B: K by ldmatrix.trans); dQ *= scale.
//
// AttentionBackwardMode::kAtomicDq replaces pass 3 (the recomputation of S and dP: 7 tile
// products per (query tile, kv tile) pair instead of 5) with dQ computed inside pass 2: each
// warp stages its dS^T (bf16) in shared memory, and after a barrier the 4 warps split
//      dQ[query tile] += dS K  (A: dS^T by ldmatrix.trans; B: K by ldmatrix.trans)
// and add it to an fp32 accumulator [B*T, n_heads * hd] in the scratch with float atomics
// (zeroed first; FlashAttention-2's scheme). 4. DqFromAccKernel writes dq = bf16(scale * acc).
// The atomics add in whatever order the blocks run, so dq's bits may vary between runs.
// kOrderedDq is the same pass with each query tile's additions in a fixed order (a counter per
// query tile: see DkDvKernel), deterministic again; its first contributor stores and its last
// writes dq (DqTurn), so neither the zeroing nor pass 4 is needed.
//
// Tiles: the dk/dv pass holds two 16 x hd fp32 accumulators per warp, so its query tile is 64
// rows at hd = 64 and 32 rows at hd = 128 (keeps S^T and dP^T small enough not to spill).
// Shared memory: dk/dv pass 2 K/V tiles + 2 x 2 Q/dO tiles + 4 x kBq floats (55 KiB at
// hd = 64, 68.5 KiB at hd = 128); dq pass Q, dO + 2 x 2 K/V tiles (54 KiB / 102 KiB).
#include <algorithm>
#include <cmath>

#include "trainer/cuda/attention_common.cuh"
#include "trainer/cuda/attention_kernels.h"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"

namespace dyt::cuda {

namespace {

using attn::kBlockRows;
using attn::kThreads;

// ---- 1. Dvec = rowwise dot(dout, out) -------------------------------------------------------

template <int kHd>
__global__ void __launch_bounds__(kThreads)
    RowDotKernel(float* __restrict__ dvec, const bf16* __restrict__ dout,
                 const bf16* __restrict__ out, int64_t rows, int T, int H, int64_t ld_o) {
  const int64_t w = static_cast<int64_t>(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (w >= rows * H) return;  // warp-uniform; no barriers below
  const int64_t n = w / H;    // token row b * T + t
  const int h = static_cast<int>(w % H);
  float acc = 0.f;
  if (lane < kHd / 8) {
    const int64_t off = n * ld_o + static_cast<int64_t>(h) * kHd + lane * 8;
    float a[8], c[8];
    detail::LoadVec<8>(dout + off, a);
    detail::LoadVec<8>(out + off, c);
#pragma unroll
    for (int i = 0; i < 8; ++i) acc = fmaf(a[i], c[i], acc);
  }
  acc = detail::WarpSum(acc);
  if (lane == 0) {
    const int64_t b = n / T, t = n % T;
    dvec[(b * H + h) * T + t] = acc;
  }
}

// ---- 2. dK, dV ------------------------------------------------------------------------------

template <int kHd>
inline constexpr int kDkDvQueryRows = kHd == 64 ? 64 : 32;

// With the fused dq (kAtomicDq), dS^T is staged in shared memory: [64 keys][kBq + 8] bf16
// (padded rows: conflict-free fragment stores and ldmatrix, see attention_common.cuh).
template <int kHd>
inline constexpr int kDsLd = kDkDvQueryRows<kHd> + attn::kPad;

// acc[rows, cols] += v, two adjacent floats (one 8-byte atomic on sm_90).
__device__ __forceinline__ void AtomicAddPair(float* p, float a, float b) {
#if defined(DYT_SIMT) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900)
  atomicAdd(reinterpret_cast<float2*>(p), make_float2(a, b));
#else
  atomicAdd(p, a);
  atomicAdd(p + 1, b);
#endif
}

// How a block's dQ partial joins its query tile's sum in dq_acc:
//   kAdd:   float atomics (kAtomicDq; kOrderedDq between the first and the last contributor);
//   kFirst: kOrderedDq's first contributor stores, so dq_acc needs no zeroing;
//   kLast:  kOrderedDq's last contributor reads the sum so far (L2, after its turn came), adds
//           its own and writes dq = bf16(scale * RoPE-backward(sum)) itself, so no pass over
//           dq_acc follows;
//   kOnly:  first and last at once (a query tile inside the first kv tile): dq from the partial.
enum class DqTurn { kAdd, kFirst, kLast, kOnly };

// Where kLast / kOnly write: dq rows from `dq` (the tile's first row, its head's first column)
// at stride ld_dq, scaled by `scale`, rotated back by `rope` (if set) at positions qs + row.
struct DqOut {
  bf16* dq;
  int64_t ld_dq;
  float scale;
  RopeTables rope;
};

// The fused-dq step of the dk/dv pass: dQ[query tile] += dS K over the block's 64 keys, with
// dS^T staged in sS ([64][kDsLd]) and K in sK. The kBq x kHd product is split over the 4 warps
// (16 query rows x 64 head-dim columns each) and joins dq_acc at `base` (the tile's first row,
// its head's first column; row stride H * kHd) as `turn` says; rows at or past T are skipped.
template <int kHd>
__device__ __forceinline__ void AddDq(float* __restrict__ dq_acc, const bf16* sS, const bf16* sK,
                                      int T, int qs, int64_t base, int H, int lane, int warp,
                                      DqTurn turn, const DqOut& out) {
  constexpr int kBq = kDkDvQueryRows<kHd>;
  constexpr int kRowGroups = kBq / 16;
  constexpr int kCols = kHd * kRowGroups / attn::kWarps;  // 64 at both head dims
  static_assert(kCols == 64, "each warp owns 16 rows x 64 columns");
  // In two 32-column halves, one after the other: 16 accumulator registers live instead of 32
  // (the dk/dv accumulators already hold most of the register file at hd = 128).
  constexpr int kHalf = kCols / 2;
  const int r0 = (warp % kRowGroups) * 16;
  const int g = lane >> 2, t4 = lane & 3;
  const int64_t ld = static_cast<int64_t>(H) * kHd;
#pragma unroll 1
  for (int half = 0; half < 2; ++half) {
    const int c0 = (warp / kRowGroups) * kCols + half * kHalf;
    float acc[kHalf / 8][4];
#pragma unroll
    for (int n = 0; n < kHalf / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kBlockRows / 16; ++kk) {
      uint32_t a[4];
      attn::LdMatrixX4Trans(
          a, attn::SmemAddr(sS + attn::LdmOffsetATrans(lane, r0, kk * 16, kDsLd<kHd>)));
#pragma unroll
      for (int dp = 0; dp < kHalf / 16; ++dp) {
        uint32_t b[4];
        attn::LdMatrixX4Trans(
            b, attn::SmemAddr(sK +
                              attn::LdmOffsetBTrans(lane, kk * 16, c0 + dp * 16, attn::kLds<kHd>)));
        attn::Mma(acc[2 * dp], a, b[0], b[1]);
        attn::Mma(acc[2 * dp + 1], a, b[2], b[3]);
      }
    }
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int r = r0 + g + rr * 8;
      if (qs + r >= T) continue;
      float* row = dq_acc + base + r * ld + c0 + 2 * t4;
      if (turn == DqTurn::kAdd) {
#pragma unroll
        for (int n = 0; n < kHalf / 8; ++n) {
          AtomicAddPair(row + n * 8, acc[n][2 * rr], acc[n][2 * rr + 1]);
        }
      } else if (turn == DqTurn::kFirst) {
#pragma unroll
        for (int n = 0; n < kHalf / 8; ++n) {
          __stcg(reinterpret_cast<float2*>(row + n * 8),
                 make_float2(acc[n][2 * rr], acc[n][2 * rr + 1]));
        }
      } else {
        // kLast / kOnly: the lane's pair (columns c, c + 1, c even) is one RoPE pair.
        bf16* dst = out.dq + r * out.ld_dq + c0 + 2 * t4;
#pragma unroll
        for (int n = 0; n < kHalf / 8; ++n) {
          float x0 = acc[n][2 * rr], x1 = acc[n][2 * rr + 1];
          if (turn == DqTurn::kLast) {
            const float2 sum = __ldcg(reinterpret_cast<const float2*>(row + n * 8));
            x0 += sum.x;
            x1 += sum.y;
          }
          if (out.rope.cos != nullptr) {
            const int at = (qs + r) * (kHd / 2) + (c0 + n * 8 + 2 * t4) / 2;
            attn::RopeBackwardPair(x0, x1, out.rope.cos[at], out.rope.sin[at]);
          }
          *reinterpret_cast<uint32_t*>(dst + n * 8) =
              attn::PackBf16(x0 * out.scale, x1 * out.scale);
        }
      }
    }
  }
}

// Where the dk/dv pass's blocks leave dq: to the separate pass 3 (kDeterministic), added into
// the accumulator by atomics as they come (kAtomicDq) or in a fixed order (kOrderedDq).
enum class DqPass { kSeparate, kAtomic, kOrdered };

template <int kHd, DqPass kDq>
constexpr int DkDvSmemBytes() {
  constexpr int kBq = kDkDvQueryRows<kHd>;
  return attn::TileBytes<kHd>(kBlockRows) * 2 + attn::TileBytes<kHd>(kBq) * 4 + 4 * kBq * 4 +
         (kDq != DqPass::kSeparate ? kBlockRows * kDsLd<kHd> * 2 : 0);
}

// dq_acc (kAtomic, kOrdered): the fp32 [B*T, H * kHd] dq accumulator (kAtomic: zeroed by the
// caller; kOrdered: written first by each tile's first contributor). kOrdered writes dq (row
// stride ld_dq) itself: each query tile's last contributor (kv tile 0) does (DqTurn).
// dq_count (kOrdered): [B, H, ceil(T / kBq)] ints, zeroed: how many kv tiles have added into
// each query tile of dq_acc. Query tile iq takes its kv tiles' sums in descending order: kv
// tile j adds once the count is jmax(iq) - j. The blocks run the kv tiles in descending order
// (block x takes tile tiles - 1 - x) and the GPU starts blocks in index order, so the block a
// block waits for has started before it: no deadlock. Each kv tile walks its query tiles in
// ascending order, one step ahead of the next lower tile, so in steady state nobody waits.
template <int kHd, DqPass kDq>
__global__ void __launch_bounds__(kThreads)
    DkDvKernel(bf16* __restrict__ dk, bf16* __restrict__ dv, int64_t ld_dkv, bf16* __restrict__ dq,
               int64_t ld_dq, float* __restrict__ dq_acc, int* __restrict__ dq_count,
               const bf16* __restrict__ dout, const float* __restrict__ lse,
               const float* __restrict__ dvec, const bf16* __restrict__ q,
               const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int H, int group,
               int64_t ld_q, int64_t ld_kv, int64_t ld_o, float scale, float scale_log2,
               RopeTables rope) {
  constexpr int kLd = attn::kLds<kHd>;
  constexpr int kBq = kDkDvQueryRows<kHd>;
  DYT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sK = reinterpret_cast<bf16*>(smem);                   // [64][kLd]
  bf16* sV = sK + kBlockRows * kLd;                           // [64][kLd]
  bf16* sQ = sV + kBlockRows * kLd;                           // [2][kBq][kLd]
  bf16* sdO = sQ + 2 * kBq * kLd;                             // [2][kBq][kLd]
  float* sL = reinterpret_cast<float*>(sdO + 2 * kBq * kLd);  // [2][kBq] lse
  float* sD = sL + 2 * kBq;                                   // [2][kBq] Dvec
  bf16* sS = reinterpret_cast<bf16*>(sD + 2 * kBq);           // fused dq: [64][kDsLd] dS^T

  const int n_kt = static_cast<int>(gridDim.x);
  const int kt = kDq == DqPass::kOrdered ? n_kt - 1 - static_cast<int>(blockIdx.x)
                                         : static_cast<int>(blockIdx.x);
  const int hk = blockIdx.y, b = blockIdx.z;
  const int kv0 = kt * kBlockRows;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int64_t row_b = static_cast<int64_t>(b) * T;

  const int64_t kv_off = (row_b + kv0) * ld_kv + static_cast<int64_t>(hk) * kHd;
  attn::LoadTileAsync<kBlockRows, kHd>(sK, k + kv_off, ld_kv, T - kv0, tid);
  attn::LoadTileAsync<kBlockRows, kHd>(sV, v + kv_off, ld_kv, T - kv0, tid);

  // Steps: (query head h0 + it / nq, query tile first + it % nq); kv0 is a multiple of kBq.
  const int first = kv0 / kBq;
  const int nq = (T + kBq - 1) / kBq - first;
  const int n_steps = group * nq;
  const int h0 = hk * group;
  auto load_step = [&](int it, int buf) {
    const int h = h0 + it / nq;
    const int qs = (first + it % nq) * kBq;
    const int64_t off = (row_b + qs) * ld_q + static_cast<int64_t>(h) * kHd;
    const int64_t off_o = (row_b + qs) * ld_o + static_cast<int64_t>(h) * kHd;
    const int64_t off_l = (static_cast<int64_t>(b) * H + h) * T + qs;
    attn::LoadTileAsync<kBq, kHd>(sQ + buf * kBq * kLd, q + off, ld_q, T - qs, tid);
    attn::LoadTileAsync<kBq, kHd>(sdO + buf * kBq * kLd, dout + off_o, ld_o, T - qs, tid);
    attn::LoadRowValuesAsync<kBq>(sL + buf * kBq, lse + off_l, T - qs, tid);
    attn::LoadRowValuesAsync<kBq>(sD + buf * kBq, dvec + off_l, T - qs, tid);
  };
  load_step(0, 0);
  attn::CpAsyncCommit();

  float dk_acc[kHd / 8][4], dv_acc[kHd / 8][4];
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) {
#pragma unroll
    for (int i = 0; i < 4; ++i) dk_acc[n][i] = dv_acc[n][i] = 0.f;
  }
  const int key0 = kv0 + warp * 16 + g;  // this lane's keys: key0, key0 + 8
  const bf16* k_rows = sK + warp * 16 * kLd;
  const bf16* v_rows = sV + warp * 16 * kLd;

  for (int it = 0; it < n_steps; ++it) {
    const int buf = it & 1;
    if (it + 1 < n_steps) load_step(it + 1, buf ^ 1);
    attn::CpAsyncCommit();
    attn::CpAsyncWait<1>();
    __syncthreads();

    const int qs = (first + it % nq) * kBq;
    const bf16* q_s = sQ + buf * kBq * kLd;
    const bf16* do_s = sdO + buf * kBq * kLd;
    const float* l_s = sL + buf * kBq;
    const float* d_s = sD + buf * kBq;

    // S^T = K Q^T and dP^T = V dO^T: 16 keys x kBq queries per warp.
    float st[kBq / 8][4], dpt[kBq / 8][4];
#pragma unroll
    for (int n = 0; n < kBq / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) st[n][i] = dpt[n][i] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < kHd / 16; ++kk) {
      uint32_t ka[4], va[4];
      const int a_off = attn::LdmOffsetA(lane, 0, kk * 16, kLd);
      attn::LdMatrixX4(ka, attn::SmemAddr(k_rows + a_off));
      attn::LdMatrixX4(va, attn::SmemAddr(v_rows + a_off));
#pragma unroll
      for (int np = 0; np < kBq / 16; ++np) {
        const int b_off = attn::LdmOffsetBRows(lane, np * 16, kk * 16, kLd);
        uint32_t qb[4], ob[4];
        attn::LdMatrixX4(qb, attn::SmemAddr(q_s + b_off));
        attn::LdMatrixX4(ob, attn::SmemAddr(do_s + b_off));
        attn::Mma(st[2 * np], ka, qb[0], qb[1]);
        attn::Mma(st[2 * np + 1], ka, qb[2], qb[3]);
        attn::Mma(dpt[2 * np], va, ob[0], ob[1]);
        attn::Mma(dpt[2 * np + 1], va, ob[2], ob[3]);
      }
    }

    // P^T, with the causal mask (query < key) and rows past T zeroed.
#pragma unroll
    for (int n = 0; n < kBq / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int cl = n * 8 + 2 * t4 + (i & 1);  // query within the tile
        const int qq = qs + cl;
        const int key = key0 + (i >> 1) * 8;
        const float p = exp2f(st[n][i] * scale_log2 - l_s[cl] * attn::kLog2e);
        st[n][i] = (qq >= key && qq < T) ? p : 0.f;
      }
    }

    // dV += P^T dO (k = query).
    attn::MmaAccSmemTrans<kBq, kHd, kLd>(dv_acc, st, do_s, lane);

    // dS^T = P^T (dP^T - Dvec[query]); P^T = 0 keeps masked entries 0 (Dvec is finite).
#pragma unroll
    for (int n = 0; n < kBq / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) st[n][i] *= dpt[n][i] - d_s[n * 8 + 2 * t4 + (i & 1)];
    }

    // dK += dS^T Q (k = query).
    attn::MmaAccSmemTrans<kBq, kHd, kLd>(dk_acc, st, q_s, lane);
    int* count = nullptr;  // kOrdered: this query tile's count
    if constexpr (kDq != DqPass::kSeparate) {
      attn::AccToSmem<kBq>(sS + warp * 16 * kDsLd<kHd>, st, 1.f, 1.f, lane);
      const int h = h0 + it / nq;
      DqTurn turn = DqTurn::kAdd;
      if constexpr (kDq == DqPass::kOrdered) {
        const int iq = qs / kBq, n_qt = (T + kBq - 1) / kBq;
        count = dq_count + (static_cast<int64_t>(b) * H + h) * n_qt + iq;
        const int jmax = min((qs + kBq - 1) / kBlockRows, n_kt - 1);
        if (kt == jmax) {
          turn = kt == 0 ? DqTurn::kOnly : DqTurn::kFirst;
        } else if (kt == 0) {
          turn = DqTurn::kLast;
        }
        if (tid == 0) attn::WaitForCount(count, jmax - kt);
      }
      __syncthreads();  // all 64 keys' dS^T staged (kOrdered: and it is this tile's turn)
      const DqOut out{dq + (row_b + qs) * ld_dq + static_cast<int64_t>(h) * kHd, ld_dq, scale,
                      rope};
      AddDq<kHd>(dq_acc, sS, sK, T, qs, (row_b + qs) * H * kHd + h * kHd, H, lane, warp, turn, out);
      if constexpr (kDq == DqPass::kOrdered) __threadfence();  // the adds before the count
    }
    __syncthreads();  // every warp is done with buffer `buf` (and sS) before it is refilled
    if constexpr (kDq == DqPass::kOrdered) {
      if (tid == 0) atomicAdd(count, 1);
    }
  }

  // Epilogue: the warp's own K / V rows stage dK (scaled) and dV for 16-byte stores.
  // With RoPE, dK goes through fp32 staging in the Q / dO buffers (free after the loop's last
  // barrier: 16 x kLd floats per warp is exactly their 2 x kBq x 2 bf16 rows).
  bf16* k_stage = sK + warp * 16 * kLd;
  bf16* v_stage = sV + warp * 16 * kLd;
  const int w0 = kv0 + warp * 16;
  const int64_t dst = (row_b + w0) * ld_dkv + static_cast<int64_t>(hk) * kHd;
  if (rope.cos != nullptr) {
    float* stage = reinterpret_cast<float*>(sQ) + warp * 16 * kLd;
    attn::StoreAccRopeBackward<kHd>(dk + dst, ld_dkv, stage, dk_acc, scale, rope, w0, T - w0, lane);
  } else {
    attn::AccToSmem<kHd>(k_stage, dk_acc, scale, scale, lane);
  }
  attn::AccToSmem<kHd>(v_stage, dv_acc, 1.f, 1.f, lane);
  __syncwarp();
  if (rope.cos == nullptr) attn::StoreWarpRows<kHd>(dk + dst, ld_dkv, k_stage, T - w0, lane);
  attn::StoreWarpRows<kHd>(dv + dst, ld_dkv, v_stage, T - w0, lane);
}

// ---- 3. dQ ----------------------------------------------------------------------------------

template <int kHd>
constexpr int DqSmemBytes() {
  return attn::TileBytes<kHd>(kBlockRows) * 6;  // Q, dO, 2 x K, 2 x V
}

template <int kHd>
__global__ void __launch_bounds__(kThreads)
    DqKernel(bf16* __restrict__ dq, int64_t ld_dq, const bf16* __restrict__ dout,
             const float* __restrict__ lse, const float* __restrict__ dvec,
             const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
             int T, int H, int group, int64_t ld_q, int64_t ld_kv, int64_t ld_o, float scale,
             float scale_log2, RopeTables rope) {
  constexpr int kLd = attn::kLds<kHd>;
  constexpr int kBc = kBlockRows;
  DYT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sQ = reinterpret_cast<bf16*>(smem);  // [64][kLd]
  bf16* sdO = sQ + kBlockRows * kLd;         // [64][kLd]
  bf16* sK = sdO + kBlockRows * kLd;         // [2][kBc][kLd]
  bf16* sV = sK + 2 * kBc * kLd;             // [2][kBc][kLd]

  const int qt = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z;
  const int q0 = qt * kBlockRows;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int64_t row_b = static_cast<int64_t>(b) * T;
  const bf16* k_head = k + row_b * ld_kv + static_cast<int64_t>(h / group) * kHd;
  const bf16* v_head = v + row_b * ld_kv + static_cast<int64_t>(h / group) * kHd;
  const int kv_end = min(T, q0 + kBlockRows);
  const int n_tiles = (kv_end + kBc - 1) / kBc;

  attn::LoadTileAsync<kBlockRows, kHd>(sQ, q + (row_b + q0) * ld_q + static_cast<int64_t>(h) * kHd,
                                       ld_q, T - q0, tid);
  attn::LoadTileAsync<kBlockRows, kHd>(
      sdO, dout + (row_b + q0) * ld_o + static_cast<int64_t>(h) * kHd, ld_o, T - q0, tid);
  attn::LoadTileAsync<kBc, kHd>(sK, k_head, ld_kv, T, tid);
  attn::LoadTileAsync<kBc, kHd>(sV, v_head, ld_kv, T, tid);
  attn::CpAsyncCommit();

  // This lane's rows row0, row0 + 8: lse (log2 units) and Dvec; rows past T never stored.
  const int row0 = q0 + warp * 16 + g;
  float lse2[2], dd[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int r = row0 + rr * 8;
    const int64_t idx = (static_cast<int64_t>(b) * H + h) * T + r;
    lse2[rr] = r < T ? lse[idx] * attn::kLog2e : 0.f;
    dd[rr] = r < T ? dvec[idx] : 0.f;
  }

  float dq_acc[kHd / 8][4];
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) dq_acc[n][0] = dq_acc[n][1] = dq_acc[n][2] = dq_acc[n][3] = 0.f;
  const bf16* q_rows = sQ + warp * 16 * kLd;
  const bf16* do_rows = sdO + warp * 16 * kLd;

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
    attn::CpAsyncCommit();
    attn::CpAsyncWait<1>();
    __syncthreads();

    const bf16* k_s = sK + buf * kBc * kLd;
    const bf16* v_s = sV + buf * kBc * kLd;
    const int kv0 = j * kBc;

    // S = Q K^T and dP = dO V^T: 16 rows x kBc keys per warp.
    float s[kBc / 8][4], dp[kBc / 8][4];
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) s[n][i] = dp[n][i] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < kHd / 16; ++kk) {
      uint32_t qa[4], oa[4];
      const int a_off = attn::LdmOffsetA(lane, 0, kk * 16, kLd);
      attn::LdMatrixX4(qa, attn::SmemAddr(q_rows + a_off));
      attn::LdMatrixX4(oa, attn::SmemAddr(do_rows + a_off));
#pragma unroll
      for (int np = 0; np < kBc / 16; ++np) {
        const int b_off = attn::LdmOffsetBRows(lane, np * 16, kk * 16, kLd);
        uint32_t kb[4], vb[4];
        attn::LdMatrixX4(kb, attn::SmemAddr(k_s + b_off));
        attn::LdMatrixX4(vb, attn::SmemAddr(v_s + b_off));
        attn::Mma(s[2 * np], qa, kb[0], kb[1]);
        attn::Mma(s[2 * np + 1], qa, kb[2], kb[3]);
        attn::Mma(dp[2 * np], oa, vb[0], vb[1]);
        attn::Mma(dp[2 * np + 1], oa, vb[2], vb[3]);
      }
    }

    // dS = P (dP - Dvec), P = exp(scale S - lse), 0 where key > row.
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int c = kv0 + n * 8 + 2 * t4 + (i & 1);
        const int r = row0 + (i >> 1) * 8;
        const float p = exp2f(s[n][i] * scale_log2 - lse2[i >> 1]);
        s[n][i] = c <= r ? p * (dp[n][i] - dd[i >> 1]) : 0.f;
      }
    }

    // dQ += dS K (k = key): K's B fragments by ldmatrix.trans.
    attn::MmaAccSmemTrans<kBc, kHd, kLd>(dq_acc, s, k_s, lane);
    __syncthreads();
  }

  const int w0 = q0 + warp * 16;
  bf16* dst = dq + (row_b + w0) * ld_dq + static_cast<int64_t>(h) * kHd;
  if (rope.cos != nullptr) {
    // fp32 staging in the K buffers (free after the loop's last barrier): 16 x kLd floats per
    // warp, the 2 x 64 bf16 rows of sK exactly.
    float* stage = reinterpret_cast<float*>(sK) + warp * 16 * kLd;
    attn::StoreAccRopeBackward<kHd>(dst, ld_dq, stage, dq_acc, scale, rope, w0, T - w0, lane);
    return;
  }
  bf16* stage = sQ + warp * 16 * kLd;  // the warp's own Q rows
  attn::AccToSmem<kHd>(stage, dq_acc, scale, scale, lane);
  __syncwarp();
  attn::StoreWarpRows<kHd>(dst, ld_dq, stage, T - w0, lane);
}

// ---- 4. dq from the fused pass's fp32 accumulator --------------------------------------------

// dq[row, c] = bf16(scale * acc[row, c]) for rows < rows and c < width (a multiple of 8),
// with RoPE's backward first when rope is given (row's position: row % T; head_dim hd):
// 8 elements (two float4 loads, one 16-byte store) per thread, grid-stride.
__global__ void __launch_bounds__(256)
    DqFromAccKernel(bf16* __restrict__ dq, int64_t ld_dq, const float* __restrict__ acc,
                    int64_t rows, int64_t width, float scale, int T, int hd, RopeTables rope) {
  const int64_t chunks = width / 8, total = rows * chunks;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / chunks, c = (i % chunks) * 8;
    const float4* src = reinterpret_cast<const float4*>(acc + r * width + c);
    const float4 a = src[0], b = src[1];
    float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    if (rope.cos != nullptr) {
      if (hd == 64) {
        attn::RopeBackward8<64>(v, rope, static_cast<int>(r % T), static_cast<int>(c % 64));
      } else {
        attn::RopeBackward8<128>(v, rope, static_cast<int>(r % T), static_cast<int>(c % 128));
      }
    }
    uint4 out;
    out.x = attn::PackBf16(v[0] * scale, v[1] * scale);
    out.y = attn::PackBf16(v[2] * scale, v[3] * scale);
    out.z = attn::PackBf16(v[4] * scale, v[5] * scale);
    out.w = attn::PackBf16(v[6] * scale, v[7] * scale);
    *reinterpret_cast<uint4*>(dq + r * ld_dq + c) = out;
  }
}

// ---- launch ---------------------------------------------------------------------------------

// The scratch: Dvec [B, n_heads, T] fp32; then (kAtomicDq, kOrderedDq) the dq accumulator
// [B*T, n_heads * head_dim] fp32; then (kOrderedDq) the per-query-tile counts, [B, n_heads,
// ceil(T / 32)] ints (enough for either query tile height). Each 256-byte aligned.
size_t Align256(size_t bytes) { return (bytes + 255) / 256 * 256; }
size_t DvecBytes(const AttentionShape& s) {
  return Align256(static_cast<size_t>(s.B) * s.n_heads * s.T * sizeof(float));
}
size_t DqAccBytes(const AttentionShape& s) {
  return Align256(static_cast<size_t>(s.B) * s.T * s.n_heads * s.head_dim * sizeof(float));
}
size_t DqCountBytes(const AttentionShape& s) {
  return Align256(static_cast<size_t>(s.B) * s.n_heads * ((s.T + 31) / 32) * sizeof(int));
}

template <int kHd, DqPass kDq>
Status LaunchDkDv(unsigned tiles, bf16* dk, bf16* dv, int64_t ld_dkv, bf16* dq, int64_t ld_dq,
                  float* dq_acc, int* dq_count, const bf16* dout, const float* lse,
                  const float* dvec, const bf16* q, const bf16* k, const bf16* v,
                  const AttentionShape& s, int group, float scale, float scale_log2,
                  RopeTables rope, cudaStream_t stream) {
  constexpr int kSmem = DkDvSmemBytes<kHd, kDq>();
  const auto dkdv_kernel = DkDvKernel<kHd, kDq>;  // (DYT_LAUNCH takes no template commas)
  DYT_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(dkdv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  DYT_LAUNCH(dkdv_kernel, dim3(tiles, s.n_kv_heads, s.B), kThreads, kSmem, stream, dk, dv, ld_dkv,
             dq, ld_dq, dq_acc, dq_count, dout, lse, dvec, q, k, v, s.T, s.n_heads, group, s.ld_q,
             s.ld_kv, s.ld_o, scale, scale_log2, rope);
  return LaunchStatus(kDq == DqPass::kSeparate ? "DkDvKernel"
                      : kDq == DqPass::kAtomic ? "DkDvKernel (atomic dq)"
                                               : "DkDvKernel (ordered dq)");
}

template <int kHd>
Status LaunchBackward(bf16* dq, bf16* dk, bf16* dv, int64_t ld_dq, int64_t ld_dkv, const bf16* dout,
                      const bf16* out, const float* lse, const bf16* q, const bf16* k,
                      const bf16* v, const AttentionShape& s, float* dvec, float* dq_acc,
                      int* dq_count, RopeTables rope, cudaStream_t stream) {
  const float scale = 1.f / std::sqrt(static_cast<float>(kHd));
  const float scale_log2 = scale * attn::kLog2e;
  const int group = s.n_heads / s.n_kv_heads;
  const int64_t rows = static_cast<int64_t>(s.B) * s.T;

  const int64_t dot_blocks = detail::CeilDiv(rows * s.n_heads, kThreads / 32);
  if (dot_blocks > 0x7fffffff) {
    return InvalidArgument("FlashAttentionBackward: B * T * n_heads is too large");
  }
  DYT_LAUNCH(RowDotKernel<kHd>, static_cast<unsigned>(dot_blocks), kThreads, 0, stream, dvec, dout,
             out, rows, s.T, s.n_heads, s.ld_o);
  DYT_RETURN_IF_ERROR(LaunchStatus("RowDotKernel"));

  const unsigned tiles = static_cast<unsigned>((s.T + kBlockRows - 1) / kBlockRows);
  if (dq_count != nullptr) {
    // One pass, dq written by each query tile's last contributor: no zeroing, no dq pass.
    DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dq_count, 0, DqCountBytes(s), stream));
    return LaunchDkDv<kHd, DqPass::kOrdered>(tiles, dk, dv, ld_dkv, dq, ld_dq, dq_acc, dq_count,
                                             dout, lse, dvec, q, k, v, s, group, scale, scale_log2,
                                             rope, stream);
  }
  if (dq_acc != nullptr) {
    // One pass into the zeroed accumulator; then dq from it.
    DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dq_acc, 0, DqAccBytes(s), stream));
    DYT_RETURN_IF_ERROR((LaunchDkDv<kHd, DqPass::kAtomic>(tiles, dk, dv, ld_dkv, nullptr, 0, dq_acc,
                                                          nullptr, dout, lse, dvec, q, k, v, s,
                                                          group, scale, scale_log2, rope, stream)));
    const int64_t width = static_cast<int64_t>(s.n_heads) * kHd;
    const int64_t blocks = std::min<int64_t>(detail::CeilDiv(rows * width / 8, 256), 65536);
    DYT_LAUNCH(DqFromAccKernel, static_cast<unsigned>(blocks), 256, 0, stream, dq, ld_dq, dq_acc,
               rows, width, scale, s.T, kHd, rope);
    return LaunchStatus("DqFromAccKernel");
  }

  DYT_RETURN_IF_ERROR((LaunchDkDv<kHd, DqPass::kSeparate>(
      tiles, dk, dv, ld_dkv, nullptr, 0, nullptr, nullptr, dout, lse, dvec, q, k, v, s, group,
      scale, scale_log2, rope, stream)));

  constexpr int kDqSmem = DqSmemBytes<kHd>();
  DYT_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(DqKernel<kHd>, cudaFuncAttributeMaxDynamicSharedMemorySize, kDqSmem));
  DYT_LAUNCH(DqKernel<kHd>, dim3(tiles, s.n_heads, s.B), kThreads, kDqSmem, stream, dq, ld_dq, dout,
             lse, dvec, q, k, v, s.T, s.n_heads, group, s.ld_q, s.ld_kv, s.ld_o, scale, scale_log2,
             rope);
  return LaunchStatus("DqKernel");
}

}  // namespace

size_t FlashAttentionBackwardScratchBytes(const AttentionShape& shape, AttentionBackwardMode mode) {
  if (shape.B < 1 || shape.T < 1 || shape.n_heads < 1) return 0;
  if (mode == AttentionBackwardMode::kDeterministic) return DvecBytes(shape);
  if (shape.head_dim < 1) return 0;
  return DvecBytes(shape) + DqAccBytes(shape) +
         (mode == AttentionBackwardMode::kOrderedDq ? DqCountBytes(shape) : 0);
}

Status FlashAttentionBackward(bf16* dq, bf16* dk, bf16* dv, int64_t ld_dq, int64_t ld_dkv,
                              const bf16* dout, const bf16* out, const float* lse, const bf16* q,
                              const bf16* k, const bf16* v, const AttentionShape& shape,
                              void* scratch, size_t scratch_bytes, cudaStream_t stream,
                              AttentionBackwardMode mode, RopeTables rope) {
  constexpr const char* fn = "FlashAttentionBackward";
  DYT_RETURN_IF_ERROR(attn::CheckAttentionShape(fn, shape));
  const int64_t hd = shape.head_dim;
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_q", shape.ld_q, shape.n_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_kv", shape.ld_kv, shape.n_kv_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_o", shape.ld_o, shape.n_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_dq", ld_dq, shape.n_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckStride(fn, "ld_dkv", ld_dkv, shape.n_kv_heads * hd));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "dq", dq));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "dk", dk));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "dv", dv));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "dout", dout));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "out", out));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "lse", lse));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "q", q));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "k", k));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "v", v));
  if ((rope.cos == nullptr) != (rope.sin == nullptr)) {
    return InvalidArgument(std::string(fn) +
                           ": rope.cos and rope.sin must both be set or both null");
  }
  if (rope.cos != nullptr) {
    DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "rope.cos", rope.cos));  // 16-byte table loads
    DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "rope.sin", rope.sin));
  }
  const size_t need = FlashAttentionBackwardScratchBytes(shape, mode);
  DYT_RETURN_IF_ERROR(detail::CheckScratch(fn, scratch, scratch_bytes, need));
  DYT_RETURN_IF_ERROR(attn::CheckPointer(fn, "scratch", scratch));
  float* dvec = static_cast<float*>(scratch);
  char* base = static_cast<char*>(scratch);
  float* dq_acc = mode != AttentionBackwardMode::kDeterministic
                      ? reinterpret_cast<float*>(base + DvecBytes(shape))
                      : nullptr;
  int* dq_count = mode == AttentionBackwardMode::kOrderedDq
                      ? reinterpret_cast<int*>(base + DvecBytes(shape) + DqAccBytes(shape))
                      : nullptr;
  if (shape.head_dim == 64) {
    return LaunchBackward<64>(dq, dk, dv, ld_dq, ld_dkv, dout, out, lse, q, k, v, shape, dvec,
                              dq_acc, dq_count, rope, stream);
  }
  return LaunchBackward<128>(dq, dk, dv, ld_dq, ld_dkv, dout, out, lse, q, k, v, shape, dvec,
                             dq_acc, dq_count, rope, stream);
}

}  // namespace dyt::cuda
