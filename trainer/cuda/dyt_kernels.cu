// Dynamic Tanh kernels. Design notes:
//
// * Tiling. A block is (bx, by) threads: bx threads across the row, each owning kVec = 8
//   consecutive channels (one 16-byte access per bf16 tensor), by rows. A thread keeps its
//   channels for the whole kernel and walks down the rows (tiles of by * rows rows, striding
//   by the grid), so gamma/beta sit in registers, loaded once, and the parameter-gradient
//   partials of the backward accumulate in registers with no shared memory until the end.
// * Memory-level parallelism. Each thread issues the loads of all its rows of a tile before
//   using any of them. The forward keeps them as raw 16-byte registers and runs full tiles
//   without bounds checks (the last, partial tile separately): a bounds check or a conversion
//   between two loads makes the compiler wait for the first (it did, in the legacy kernel).
// * Persistent grid. The grid holds as many blocks as the GPU keeps resident at once (the
//   occupancy calculator, times the SM count), so the work is one full wave, no ragged tail.
// * Tuning. The forward kernel's knobs (rows per thread, register cap, tanh, cache hints,
//   grid, block shape) are template / launch parameters; tuning::DytForwardConfigs() lists
//   the compiled-in variants and bench/gpu times them all in one run. The k*Fwd* constants
//   below are the defaults.
// * Determinism. The grid shape depends only on (N, D) and the device, each block's
//   partials are combined in fixed order, and detail::LaunchAccumulateParamGrads adds the
//   block partials in fixed order: no float atomics.
#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/dyt_kernels.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"

namespace dyt::cuda {

namespace {

using detail::CeilDiv;
using detail::kBlockThreads;
using detail::kVecWidth;

// ---- forward ------------------------------------------------------------------------------

// The legacy kernel's rows per thread, and the backward's.
constexpr int kLegacyFwdRows = 4;
constexpr int kLegacyBwdRows = 2;

// The DEFAULT forward configuration (what DytForward / ResidualDytForward run): change these to
// change it; DefaultDytForwardConfig and the compiled-in lists follow. Tanh and hint use the
// numbering of tuning::TanhImpl / tuning::CacheHint.
constexpr bool kFwdLegacy = false;  // true: back to the legacy kernel (tanh from the mode)
constexpr int kFwdRows = 4;
constexpr int kFwdMinBlocks = 3;     // 80 registers: 3 blocks per SM, as the legacy kernel had
constexpr int kFwdAccurateTanh = 0;  // libdevice tanhf
constexpr int kFwdFastTanh = 2;      // MUFU.TANH
constexpr int kFwdHint = 3;          // cs loads, cs stores (H200 sweep, 2026-11-28)
// Launch shape (H200 sweep, 2026-11-28): the plain forward runs best on a persistent grid
// (87.0% of copy bandwidth vs 80.8% with a block per tile at 16384 x 4096), the residual one
// with a block per row tile (94.8% vs 89.1%).
constexpr int kFwdWaves = 1;
constexpr int kResFwdWaves = 0;
constexpr int kFwdBlockX = 0;  // auto
// The default backward (tuning::DytBackwardConfig): rows per thread, register cap.
constexpr bool kBwdLegacy = false;
constexpr int kBwdRows = 2;
constexpr int kBwdMinBlocks = 1;

// The kernel before the tiled one below. Kept for the scalar path (kVec = 1: any D and
// alignment) and, with kVec = 8, as the measured baseline of the tuning sweep: its per-row
// `if (row < N)` put each row's load and conversion in its own branch, so the compiler issued
// one load per tensor, waited for it, converted it, then issued the next row's.
template <int kVec, typename R, bool kResidual, bool kBeta, bool kFast>
__global__ void __launch_bounds__(kBlockThreads)
    DytForwardKernel(bf16* __restrict__ y, R* r_out, const R* r, const bf16* __restrict__ d,
                     const float* __restrict__ alpha_p, const float* __restrict__ gamma,
                     const float* __restrict__ beta, int64_t N, int D) {
  const int cv = blockIdx.x * blockDim.x + threadIdx.x;
  if (cv >= D / kVec) return;  // no barriers in this kernel
  const int c0 = cv * kVec;
  const float alpha = __ldg(alpha_p);
  float g[kVec], b[kVec];
  detail::LoadParams<kVec>(gamma + c0, g);
  if constexpr (kBeta) {
    detail::LoadParams<kVec>(beta + c0, b);
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) b[k] = 0.f;
  }

  const int64_t tile_rows = static_cast<int64_t>(blockDim.y) * kLegacyFwdRows;
  const int64_t grid_rows = tile_rows * gridDim.y;
  for (int64_t row0 = blockIdx.y * tile_rows + threadIdx.y; row0 < N; row0 += grid_rows) {
    float xv[kLegacyFwdRows][kVec];
    float dv[kLegacyFwdRows][kVec];
#pragma unroll
    for (int u = 0; u < kLegacyFwdRows; ++u) {
      const int64_t row = row0 + static_cast<int64_t>(u) * blockDim.y;
      if (row < N) {
        const int64_t off = row * D + c0;
        detail::LoadVec<kVec>(r + off, xv[u]);
        if constexpr (kResidual) detail::LoadVec<kVec>(d + off, dv[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < kLegacyFwdRows; ++u) {
      const int64_t row = row0 + static_cast<int64_t>(u) * blockDim.y;
      if (row < N) {
        const int64_t off = row * D + c0;
        if constexpr (kResidual) {
#pragma unroll
          for (int k = 0; k < kVec; ++k) xv[u][k] = detail::RoundTo<R>(xv[u][k] + dv[u][k]);
          detail::StoreVec<kVec>(r_out + off, xv[u]);
        }
        float out[kVec];
#pragma unroll
        for (int k = 0; k < kVec; ++k) out[k] = g[k] * detail::Tanh<kFast>(alpha * xv[u][k]) + b[k];
        detail::StoreVec<kVec>(y + off, out);
      }
    }
  }
}

// One tile of the tiled kernel: this thread's kRows rows (by apart) of its 8 channels. All
// loads first, into raw registers, then convert, compute and store row by row. kGuard: the
// last, partial tile (rows past N skipped); full tiles have no checks, so nothing separates
// the loads.
template <bool kGuard, int kRows, int kTanh, int kHint, bool kResidual, typename R>
__device__ __forceinline__ void DytForwardTile(bf16* __restrict__ y, R* r_out, const R* r,
                                               const bf16* __restrict__ d, int64_t off0,
                                               int64_t row_step, int64_t row0, int by, int64_t N,
                                               float alpha, const float (&g)[kVecWidth],
                                               const float (&b)[kVecWidth]) {
  detail::Raw8<R> xr[kRows] = {};
  detail::Raw8<bf16> dr[kRows] = {};
#pragma unroll
  for (int u = 0; u < kRows; ++u) {
    if (!kGuard || row0 + static_cast<int64_t>(u) * by < N) {
      const int64_t off = off0 + u * row_step;
      detail::LoadRaw8<kHint, !kResidual>(r + off, xr[u]);  // r_out may alias r
      if constexpr (kResidual) detail::LoadRaw8<kHint, true>(d + off, dr[u]);
    }
  }
#pragma unroll
  for (int u = 0; u < kRows; ++u) {
    if (!kGuard || row0 + static_cast<int64_t>(u) * by < N) {
      const int64_t off = off0 + u * row_step;
      float xv[kVecWidth];
      detail::Unpack8(xr[u], xv);
      if constexpr (kResidual) {
        float dv[kVecWidth];
        detail::Unpack8(dr[u], dv);
#pragma unroll
        for (int k = 0; k < kVecWidth; ++k) xv[k] = detail::RoundTo<R>(xv[k] + dv[k]);
        detail::Store8<kHint>(r_out + off, xv);
      }
      float out[kVecWidth];
#pragma unroll
      for (int k = 0; k < kVecWidth; ++k) {
        out[k] = g[k] * detail::TanhBy<kTanh>(alpha * xv[k]) + b[k];
      }
      detail::Store8<kHint>(y + off, out);
    }
  }
}

// The vector-path forward kernel. Tiling as the design notes say: block (bx, by), a thread
// owns 8 channels (gamma/beta in registers) and walks down tiles of by * kRows rows, striding
// by the grid. Results are bit-identical to the legacy kernel's for the same tanh.
template <typename R, bool kResidual, bool kBeta, int kRows, int kMinBlocks, int kTanh, int kHint>
__global__ void __launch_bounds__(kBlockThreads, kMinBlocks)
    DytForwardTiledKernel(bf16* __restrict__ y, R* r_out, const R* r, const bf16* __restrict__ d,
                          const float* __restrict__ alpha_p, const float* __restrict__ gamma,
                          const float* __restrict__ beta, int64_t N, int D) {
  const int cv = blockIdx.x * blockDim.x + threadIdx.x;
  if (cv >= D / kVecWidth) return;  // no barriers in this kernel
  const int c0 = cv * kVecWidth;
  const float alpha = __ldg(alpha_p);
  float g[kVecWidth], b[kVecWidth];
  detail::LoadParams<kVecWidth>(gamma + c0, g);
  if constexpr (kBeta) {
    detail::LoadParams<kVecWidth>(beta + c0, b);
  } else {
#pragma unroll
    for (int k = 0; k < kVecWidth; ++k) b[k] = 0.f;
  }

  const int by = static_cast<int>(blockDim.y);
  const int64_t row_step = static_cast<int64_t>(by) * D;
  const int64_t tile_rows = static_cast<int64_t>(by) * kRows;
  const int64_t grid_rows = tile_rows * gridDim.y;
  const int64_t grid_step = grid_rows * D;
  const int64_t full_end = N - static_cast<int64_t>(by) * (kRows - 1);  // row0 < it: tile full
  int64_t row0 = blockIdx.y * tile_rows + threadIdx.y;
  int64_t off0 = row0 * D + c0;
  for (; row0 < full_end; row0 += grid_rows, off0 += grid_step) {
    DytForwardTile<false, kRows, kTanh, kHint, kResidual>(y, r_out, r, d, off0, row_step, row0, by,
                                                          N, alpha, g, b);
  }
  if (row0 < N) {
    DytForwardTile<true, kRows, kTanh, kHint, kResidual>(y, r_out, r, d, off0, row_step, row0, by,
                                                         N, alpha, g, b);
  }
}

// Compile-time knobs of one DytForwardTiledKernel variant.
template <int kRows, int kMinBlocks, int kTanh, int kHint>
struct FwdKnobs {
  static constexpr int rows = kRows, min_blocks = kMinBlocks, tanh = kTanh, hint = kHint;
};
template <typename... K>
struct KnobList {};

using FwdDefaultKnobs = KnobList<FwdKnobs<kFwdRows, kFwdMinBlocks, kFwdAccurateTanh, kFwdHint>,
                                 FwdKnobs<kFwdRows, kFwdMinBlocks, kFwdFastTanh, kFwdHint>>;

// The variants the sweep can run (bf16 with beta), one list per kernel (a variant that spills
// registers in one is left out of it): rows x register cap, the tanh implementations and the
// cache hints around the likely winners. bench/gpu/README.md has the register counts and the
// predictions; DytForwardConfigs() lists them after the defaults.
using FwdSweepPlain = KnobList<
    // rows per thread x register cap, libdevice tanh, ld.global.cs. Registers (blocks of 256
    // threads per SM): r1 54 (4), r1.b5 48 (5), r1.b6 40 (6), r2 83 (2), r2.b3 78 (3),
    // r2.b4 64 (4), r2.b5 48 (5), r4 104 (2), r4.b3 80 (3), r4.b4 64 (4), r8 126 (2).
    FwdKnobs<1, 1, 0, 0>, FwdKnobs<1, 5, 0, 0>, FwdKnobs<1, 6, 0, 0>, FwdKnobs<2, 1, 0, 0>,
    FwdKnobs<2, 3, 0, 0>, FwdKnobs<2, 4, 0, 0>, FwdKnobs<2, 5, 0, 0>, FwdKnobs<4, 1, 0, 0>,
    FwdKnobs<4, 3, 0, 0>, FwdKnobs<4, 4, 0, 0>, FwdKnobs<8, 1, 0, 0>,
    // tanh without the saturation test (identical results); hardware tanh
    FwdKnobs<2, 4, 1, 0>, FwdKnobs<4, 1, 1, 0>, FwdKnobs<4, 3, 1, 0>, FwdKnobs<4, 4, 1, 0>,
    FwdKnobs<8, 1, 1, 0>, FwdKnobs<2, 4, 2, 0>, FwdKnobs<4, 1, 2, 0>, FwdKnobs<4, 3, 2, 0>,
    FwdKnobs<4, 4, 2, 0>, FwdKnobs<8, 1, 2, 0>,
    // cache hints
    FwdKnobs<4, 3, 0, 1>, FwdKnobs<4, 3, 0, 2>, FwdKnobs<4, 3, 0, 3>, FwdKnobs<4, 4, 1, 1>,
    FwdKnobs<4, 4, 1, 2>, FwdKnobs<4, 4, 1, 3>>;
using FwdSweepResidual = KnobList<
    // r1 62 (4), r1.b5 48 (5), r2 94 (2), r2.b3 80 (3), r2.b4 64 (4), r4 128 (2), r4.b3 80 (3),
    // r8 182 (1). Left out, they spill: r1.b6, r2.b5, r4.b4, r8.b2, r8.b3.
    FwdKnobs<1, 1, 0, 0>, FwdKnobs<1, 5, 0, 0>, FwdKnobs<2, 1, 0, 0>, FwdKnobs<2, 3, 0, 0>,
    FwdKnobs<2, 4, 0, 0>, FwdKnobs<4, 1, 0, 0>, FwdKnobs<4, 3, 0, 0>, FwdKnobs<8, 1, 0, 0>,
    FwdKnobs<2, 4, 1, 0>, FwdKnobs<4, 1, 1, 0>, FwdKnobs<4, 3, 1, 0>, FwdKnobs<2, 4, 2, 0>,
    FwdKnobs<4, 1, 2, 0>, FwdKnobs<4, 3, 2, 0>, FwdKnobs<4, 3, 0, 1>, FwdKnobs<4, 3, 0, 2>,
    FwdKnobs<4, 3, 0, 3>, FwdKnobs<2, 4, 1, 1>, FwdKnobs<2, 4, 1, 2>, FwdKnobs<2, 4, 1, 3>>;
template <bool kResidual>
using FwdSweepKnobs = std::conditional_t<kResidual, FwdSweepResidual, FwdSweepPlain>;

template <typename K>
bool KnobsMatch(const tuning::DytForwardConfig& c) {
  return !c.legacy && c.rows == K::rows && c.min_blocks == K::min_blocks &&
         static_cast<int>(c.tanh) == K::tanh && static_cast<int>(c.hint) == K::hint;
}

// Calls f(K{}) for the first K of the list that matches c; false if none does.
template <typename F, typename... K>
bool WithKnobs(const tuning::DytForwardConfig& c, KnobList<K...>, F&& f) {
  return ((KnobsMatch<K>(c) ? (f(K{}), true) : false) || ...);
}

template <typename K>
tuning::DytForwardConfig ConfigOf() {
  tuning::DytForwardConfig c;
  c.rows = K::rows;
  c.min_blocks = K::min_blocks;
  c.tanh = static_cast<tuning::TanhImpl>(K::tanh);
  c.hint = static_cast<tuning::CacheHint>(K::hint);
  return c;
}

bool SameKernel(const tuning::DytForwardConfig& a, const tuning::DytForwardConfig& b) {
  return a.legacy == b.legacy && a.rows == b.rows && a.min_blocks == b.min_blocks &&
         a.tanh == b.tanh && a.hint == b.hint;
}

// Appends the configurations of the list whose kernel is not in `out` yet.
template <typename... K>
void AppendConfigs(KnobList<K...>, std::vector<tuning::DytForwardConfig>& out) {
  for (const tuning::DytForwardConfig& c : {ConfigOf<K>()...}) {
    if (std::none_of(out.begin(), out.end(), [&](const auto& o) { return SameKernel(o, c); })) {
      out.push_back(c);
    }
  }
}

// Block of the tiled kernel: bx threads across the row's vectors (block_x, or as many as the
// row has up to 256), 256 / bx rows.
dim3 TiledBlock(int D, int block_x) {
  const int want = block_x > 0 ? block_x : kBlockThreads;
  const int bx = std::min(detail::RoundUp(D / kVecWidth, 32), want);
  return dim3(bx, std::max(1, kBlockThreads / bx));
}

struct FwdArgs {
  int64_t N;
  int D;
  int waves;
  int block_x;
  int max_grid_y;
  cudaStream_t stream;
};

template <typename K, typename R, bool kResidual, bool kBeta>
void LaunchTiledForward(const FwdArgs& a, bf16* y, R* r_out, const R* r, const bf16* d,
                        const float* alpha, const float* gamma, const float* beta) {
  auto* kernel =
      DytForwardTiledKernel<R, kResidual, kBeta, K::rows, K::min_blocks, K::tanh, K::hint>;
  const dim3 block = TiledBlock(a.D, a.block_x);
  const int gx = static_cast<int>(CeilDiv(a.D / kVecWidth, block.x));
  const int64_t row_tiles = CeilDiv(a.N, int64_t{block.y} * K::rows);
  int64_t gy = row_tiles;
  if (a.waves > 0) {
    const int64_t resident =
        detail::ResidentBlocks(kernel, static_cast<int>(block.x * block.y), 0) * a.waves;
    gy = std::clamp<int64_t>(resident / gx, 1, row_tiles);
  }
  gy = std::min<int64_t>(gy, a.max_grid_y > 0 ? a.max_grid_y : 65535);
  DYT_LAUNCH(kernel, dim3(gx, static_cast<unsigned>(gy)), block, 0, a.stream, y, r_out, r, d, alpha,
             gamma, beta, a.N, a.D);
}

template <typename R, bool kResidual, bool kBeta>
void LaunchLegacyForward(const FwdArgs& a, bool vec, bool fast, bf16* y, R* r_out, const R* r,
                         const bf16* d, const float* alpha, const float* gamma, const float* beta) {
  detail::WithBool(vec, [&](auto v) {
    detail::WithBool(fast, [&](auto f) {
      constexpr int kVec = decltype(v)::value ? kVecWidth : 1;
      auto* kernel = DytForwardKernel<kVec, R, kResidual, kBeta, decltype(f)::value>;
      const dim3 block = detail::RowTileBlock(a.D, kVec);
      const detail::TileShape s = detail::RowTileShape(
          a.N, a.D, kVec, kLegacyFwdRows,
          detail::ResidentBlocks(kernel, static_cast<int>(block.x * block.y), 0));
      DYT_LAUNCH(kernel, s.grid, s.block, 0, a.stream, y, r_out, r, d, alpha, gamma, beta, a.N,
                 a.D);
    });
  });
}

// Partial sums go to part_gamma/part_beta [gridDim.y][D] and part_alpha
// [gridDim.y * gridDim.x]. Dynamic shared memory: (2 * threads * kVec + 32) floats.
template <int kVec, typename R, bool kDr, bool kFast>
__global__ void __launch_bounds__(kBlockThreads)
    DytBackwardKernel(bf16* dx, float* __restrict__ part_gamma, float* __restrict__ part_beta,
                      float* __restrict__ part_alpha, const bf16* __restrict__ dy,
                      const R* __restrict__ x, const bf16* dr, const float* __restrict__ alpha_p,
                      const float* __restrict__ gamma, int64_t N, int D) {
  DYT_DYNAMIC_SMEM(float, smem);
  const int nthreads = blockDim.x * blockDim.y;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  float* s_gamma = smem;
  float* s_beta = smem + nthreads * kVec;
  float* s_red = s_beta + nthreads * kVec;

  const int cv = blockIdx.x * blockDim.x + threadIdx.x;
  const bool active = cv < D / kVec;  // inactive threads still join the barriers
  const int c0 = cv * kVec;
  float acc_g[kVec], acc_b[kVec];
#pragma unroll
  for (int k = 0; k < kVec; ++k) acc_g[k] = acc_b[k] = 0.f;
  float acc_a = 0.f;

  if (active) {
    const float alpha = __ldg(alpha_p);
    float g[kVec];
    detail::LoadParams<kVec>(gamma + c0, g);
    const int64_t tile_rows = static_cast<int64_t>(blockDim.y) * kLegacyBwdRows;
    const int64_t grid_rows = tile_rows * gridDim.y;
    for (int64_t row0 = blockIdx.y * tile_rows + threadIdx.y; row0 < N; row0 += grid_rows) {
      float dyv[kLegacyBwdRows][kVec], xv[kLegacyBwdRows][kVec], drv[kLegacyBwdRows][kVec];
#pragma unroll
      for (int u = 0; u < kLegacyBwdRows; ++u) {
        const int64_t row = row0 + static_cast<int64_t>(u) * blockDim.y;
        if (row < N) {
          const int64_t off = row * D + c0;
          detail::LoadVec<kVec>(dy + off, dyv[u]);
          detail::LoadVec<kVec>(x + off, xv[u]);
          if constexpr (kDr) detail::LoadVec<kVec>(dr + off, drv[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kLegacyBwdRows; ++u) {
        const int64_t row = row0 + static_cast<int64_t>(u) * blockDim.y;
        if (row < N) {
          const int64_t off = row * D + c0;
          float out[kVec];
#pragma unroll
          for (int k = 0; k < kVec; ++k) {
            const float t = detail::Tanh<kFast>(alpha * xv[u][k]);
            const float dz = dyv[u][k] * g[k] * (1.f - t * t);  // dL / d(alpha * x)
            out[k] = dz * alpha;
            if constexpr (kDr) out[k] += drv[u][k];
            acc_a += dz * xv[u][k];
            acc_g[k] += dyv[u][k] * t;
            acc_b[k] += dyv[u][k];
          }
          detail::StoreVec<kVec>(dx + off, out);
        }
      }
    }
  }

  // Combine the block's rows: each column's by partials in threadIdx.y order.
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    s_gamma[tid * kVec + k] = acc_g[k];
    s_beta[tid * kVec + k] = acc_b[k];
  }
  const float block_alpha = detail::BlockSum(acc_a, s_red);  // its barriers publish s_gamma/s_beta
  if (threadIdx.y == 0 && active) {
    const int64_t out = static_cast<int64_t>(blockIdx.y) * D + c0;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      float sg = 0.f, sb = 0.f;
      for (int yy = 0; yy < static_cast<int>(blockDim.y); ++yy) {
        const int idx = (yy * blockDim.x + threadIdx.x) * kVec + k;
        sg += s_gamma[idx];
        sb += s_beta[idx];
      }
      part_gamma[out + k] = sg;
      part_beta[out + k] = sb;
    }
  }
  if (tid == 0) part_alpha[blockIdx.y * gridDim.x + blockIdx.x] = block_alpha;
}

// One tile of the tiled backward: this thread's kRows rows of its 8 channels, loads first (raw),
// then row by row in the legacy kernel's order, so the partial sums are the same.
template <bool kGuard, int kRows, int kTanh, bool kDr, typename R>
__device__ __forceinline__ void DytBackwardTile(
    bf16* dx, const bf16* __restrict__ dy, const R* __restrict__ x, const bf16* dr, int64_t off0,
    int64_t row_step, int64_t row0, int by, int64_t N, float alpha, const float (&g)[kVecWidth],
    float (&acc_g)[kVecWidth], float (&acc_b)[kVecWidth], float& acc_a) {
  detail::Raw8<bf16> dyr[kRows] = {};
  detail::Raw8<R> xr[kRows] = {};
  detail::Raw8<bf16> drr[kRows] = {};
#pragma unroll
  for (int u = 0; u < kRows; ++u) {
    if (!kGuard || row0 + static_cast<int64_t>(u) * by < N) {
      const int64_t off = off0 + u * row_step;
      detail::LoadRaw8<0, false>(dy + off, dyr[u]);
      detail::LoadRaw8<0, false>(x + off, xr[u]);
      if constexpr (kDr) detail::LoadRaw8<0, false>(dr + off, drr[u]);  // dx may alias dr
    }
  }
#pragma unroll
  for (int u = 0; u < kRows; ++u) {
    if (!kGuard || row0 + static_cast<int64_t>(u) * by < N) {
      const int64_t off = off0 + u * row_step;
      float dyv[kVecWidth], xv[kVecWidth], drv[kVecWidth], out[kVecWidth];
      detail::Unpack8(dyr[u], dyv);
      detail::Unpack8(xr[u], xv);
      if constexpr (kDr) detail::Unpack8(drr[u], drv);
#pragma unroll
      for (int k = 0; k < kVecWidth; ++k) {
        const float t = detail::TanhBy<kTanh>(alpha * xv[k]);
        const float dz = dyv[k] * g[k] * (1.f - t * t);  // dL / d(alpha * x)
        out[k] = dz * alpha;
        if constexpr (kDr) out[k] += drv[k];
        acc_a += dz * xv[k];
        acc_g[k] += dyv[k] * t;
        acc_b[k] += dyv[k];
      }
      detail::Store8<0>(dx + off, out);
    }
  }
}

// The vector-path backward: the legacy kernel's tiling, partial sums and reduction, with the
// tile loads issued together (full tiles unchecked, the partial one last). Same outputs as the
// legacy kernel for the same grid.
template <typename R, bool kDr, int kRows, int kMinBlocks, int kTanh>
__global__ void __launch_bounds__(kBlockThreads, kMinBlocks)
    DytBackwardTiledKernel(bf16* dx, float* __restrict__ part_gamma, float* __restrict__ part_beta,
                           float* __restrict__ part_alpha, const bf16* __restrict__ dy,
                           const R* __restrict__ x, const bf16* dr,
                           const float* __restrict__ alpha_p, const float* __restrict__ gamma,
                           int64_t N, int D) {
  DYT_DYNAMIC_SMEM(float, smem);
  const int nthreads = blockDim.x * blockDim.y;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  float* s_gamma = smem;
  float* s_beta = smem + nthreads * kVecWidth;
  float* s_red = s_beta + nthreads * kVecWidth;

  const int cv = blockIdx.x * blockDim.x + threadIdx.x;
  const bool active = cv < D / kVecWidth;  // inactive threads still join the barriers
  const int c0 = cv * kVecWidth;
  float acc_g[kVecWidth], acc_b[kVecWidth];
#pragma unroll
  for (int k = 0; k < kVecWidth; ++k) acc_g[k] = acc_b[k] = 0.f;
  float acc_a = 0.f;

  if (active) {
    const float alpha = __ldg(alpha_p);
    float g[kVecWidth];
    detail::LoadParams<kVecWidth>(gamma + c0, g);
    const int by = static_cast<int>(blockDim.y);
    const int64_t row_step = static_cast<int64_t>(by) * D;
    const int64_t tile_rows = static_cast<int64_t>(by) * kRows;
    const int64_t grid_rows = tile_rows * gridDim.y;
    const int64_t grid_step = grid_rows * D;
    const int64_t full_end = N - static_cast<int64_t>(by) * (kRows - 1);
    int64_t row0 = blockIdx.y * tile_rows + threadIdx.y;
    int64_t off0 = row0 * D + c0;
    for (; row0 < full_end; row0 += grid_rows, off0 += grid_step) {
      DytBackwardTile<false, kRows, kTanh, kDr>(dx, dy, x, dr, off0, row_step, row0, by, N, alpha,
                                                g, acc_g, acc_b, acc_a);
    }
    if (row0 < N) {
      DytBackwardTile<true, kRows, kTanh, kDr>(dx, dy, x, dr, off0, row_step, row0, by, N, alpha, g,
                                               acc_g, acc_b, acc_a);
    }
  }

  // Combine the block's rows: each column's by partials in threadIdx.y order.
#pragma unroll
  for (int k = 0; k < kVecWidth; ++k) {
    s_gamma[tid * kVecWidth + k] = acc_g[k];
    s_beta[tid * kVecWidth + k] = acc_b[k];
  }
  const float block_alpha = detail::BlockSum(acc_a, s_red);  // its barriers publish s_gamma/s_beta
  if (threadIdx.y == 0 && active) {
    const int64_t out = static_cast<int64_t>(blockIdx.y) * D + c0;
#pragma unroll
    for (int k = 0; k < kVecWidth; ++k) {
      float sg = 0.f, sb = 0.f;
      for (int yy = 0; yy < static_cast<int>(blockDim.y); ++yy) {
        const int idx = (yy * blockDim.x + threadIdx.x) * kVecWidth + k;
        sg += s_gamma[idx];
        sb += s_beta[idx];
      }
      part_gamma[out + k] = sg;
      part_beta[out + k] = sb;
    }
  }
  if (tid == 0) part_alpha[blockIdx.y * gridDim.x + blockIdx.x] = block_alpha;
}

// Compile-time knobs of one DytBackwardTiledKernel variant; the default and the sweep (bf16 x).
template <int kRows, int kMinBlocks, int kTanh>
struct BwdKnobs {
  static constexpr int rows = kRows, min_blocks = kMinBlocks, tanh = kTanh;
};
using BwdDefaultKnobs = KnobList<BwdKnobs<kBwdRows, kBwdMinBlocks, kFwdAccurateTanh>,
                                 BwdKnobs<kBwdRows, kBwdMinBlocks, kFwdFastTanh>>;
// Registers (blocks of 256 per SM), with dr: r1 96 (2), r1.b3 80 (3), r1.b4 64 (4), r2 120 (2),
// r2.b3 80 (3), r4 128 (2). Left out, they spill: r2.b4, r4.b3.
using BwdSweepKnobs = KnobList<BwdKnobs<1, 1, 0>, BwdKnobs<1, 3, 0>, BwdKnobs<1, 4, 0>,
                               BwdKnobs<2, 1, 0>, BwdKnobs<2, 3, 0>, BwdKnobs<4, 1, 0>,
                               BwdKnobs<2, 3, 1>, BwdKnobs<2, 1, 2>, BwdKnobs<2, 3, 2>>;

template <typename K>
bool BwdKnobsMatch(const tuning::DytBackwardConfig& c) {
  return !c.legacy && c.rows == K::rows && c.min_blocks == K::min_blocks &&
         static_cast<int>(c.tanh) == K::tanh;
}

template <typename F, typename... K>
bool WithBwdKnobs(const tuning::DytBackwardConfig& c, KnobList<K...>, F&& f) {
  return ((BwdKnobsMatch<K>(c) ? (f(K{}), true) : false) || ...);
}

template <typename... K>
void AppendBwdConfigs(KnobList<K...>, std::vector<tuning::DytBackwardConfig>& out) {
  for (const tuning::DytBackwardConfig& c : {tuning::DytBackwardConfig{
           false, K::rows, K::min_blocks, static_cast<tuning::TanhImpl>(K::tanh)}...}) {
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
}

template <int kImpl>
__global__ void TanhKernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = detail::TanhBy<kImpl>(x[i]);
  }
}

// An upper bound for every backward variant: the most blocks resident by thread count, and one
// row per thread (the most row tiles).
size_t BackwardScratchBytesFor(int64_t N, int D, int vec) {
  const dim3 block = detail::RowTileBlock(D, vec);
  const detail::TileShape s = detail::RowTileShape(
      N, D, vec, 1, detail::MaxResidentBlocks(static_cast<int>(block.x * block.y)));
  const size_t gy = s.grid.y, gx = s.grid.x;
  return (2 * gy * static_cast<size_t>(D) + gy * gx) * sizeof(float);
}

// Checks the arguments, then runs configuration `cfg` (the vector path when D and the
// pointers allow it, else the legacy scalar kernel). `sweep`: cfg may be any compiled-in
// variant (bf16 with beta only); otherwise only the defaults.
template <typename R>
Status LaunchForward(const char* fn, const tuning::DytForwardConfig& cfg, bool sweep, bf16* y,
                     R* r_out, const R* r, const bf16* d, const float* alpha, const float* gamma,
                     const float* beta, int64_t N, int D, cudaStream_t stream) {
  const bool residual = d != nullptr || r_out != nullptr;
  DYT_RETURN_IF_ERROR(detail::CheckShape(fn, N, D));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "y", y));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, residual ? "r" : "x", r));
  if (residual) {
    DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "r_out", r_out));
    DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "d", d));
  }
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "alpha", alpha));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "gamma", gamma));
  if (cfg.block_x < 0 || cfg.block_x % 32 != 0 || cfg.block_x > kBlockThreads || cfg.waves < 0 ||
      cfg.max_grid_y < 0) {
    return InvalidArgument(std::string(fn) + ": bad launch knobs in config " + cfg.Name());
  }
  if (cfg.legacy && cfg.tanh == tuning::TanhImpl::kExpRcp) {
    return InvalidArgument(std::string(fn) + ": the legacy kernel has no kExpRcp tanh");
  }
  bool known = cfg.legacy || WithKnobs(cfg, FwdDefaultKnobs{}, [](auto) {});
  if constexpr (std::is_same_v<R, bf16>) {
    if (sweep && beta != nullptr) {
      known = known || (residual ? WithKnobs(cfg, FwdSweepResidual{}, [](auto) {})
                                 : WithKnobs(cfg, FwdSweepPlain{}, [](auto) {}));
    }
  }
  if (!known) {
    return InvalidArgument(std::string(fn) + ": config " + cfg.Name() +
                           " is not compiled in (sweep variants: bf16 with beta only)");
  }
  if (N == 0) return Status::Ok();

  using detail::Aligned16;
  const bool vec = D % kVecWidth == 0 && Aligned16(y) && Aligned16(r) && Aligned16(gamma) &&
                   (beta == nullptr || Aligned16(beta)) &&
                   (!residual || (Aligned16(r_out) && Aligned16(d)));
  const FwdArgs a{N, D, cfg.waves, cfg.block_x, cfg.max_grid_y, stream};
  detail::WithBool(residual, [&](auto res) {
    detail::WithBool(beta != nullptr, [&](auto has_beta) {
      constexpr bool kRes = decltype(res)::value;
      constexpr bool kBeta = decltype(has_beta)::value;
      const bool fast = cfg.tanh == tuning::TanhImpl::kHardware;
      if (!vec || cfg.legacy) {
        LaunchLegacyForward<R, kRes, kBeta>(a, vec, fast, y, r_out, r, d, alpha, gamma, beta);
        return;
      }
      auto launch = [&](auto k) {
        LaunchTiledForward<decltype(k), R, kRes, kBeta>(a, y, r_out, r, d, alpha, gamma, beta);
      };
      if constexpr (std::is_same_v<R, bf16> && kBeta) {
        if (sweep && WithKnobs(cfg, FwdSweepKnobs<kRes>{}, launch)) return;
      }
      WithKnobs(cfg, FwdDefaultKnobs{}, launch);
    });
  });
  return LaunchStatus(fn);
}

// Checks the arguments, then runs backward configuration `cfg` (the vector path when D and the
// pointers allow it, else the legacy scalar kernel). `sweep`: cfg may be any compiled-in
// variant (bf16 x only); otherwise only the defaults.
template <typename R>
Status LaunchBackward(const char* fn, const tuning::DytBackwardConfig& cfg, bool sweep, bf16* dx,
                      float* dalpha, float* dgamma, float* dbeta, const bf16* dy, const R* x,
                      const bf16* dr, const float* alpha, const float* gamma, int64_t N, int D,
                      void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(detail::CheckShape(fn, N, D));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "dx", dx));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "dalpha", dalpha));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "dgamma", dgamma));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "dy", dy));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "x", x));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "alpha", alpha));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "gamma", gamma));
  DYT_RETURN_IF_ERROR(
      detail::CheckScratch(fn, scratch, scratch_bytes, DytBackwardScratchBytes(N, D)));
  if (cfg.legacy && cfg.tanh == tuning::TanhImpl::kExpRcp) {
    return InvalidArgument(std::string(fn) + ": the legacy kernel has no kExpRcp tanh");
  }
  bool known = cfg.legacy || WithBwdKnobs(cfg, BwdDefaultKnobs{}, [](auto) {});
  if constexpr (std::is_same_v<R, bf16>) {
    if (sweep) known = known || WithBwdKnobs(cfg, BwdSweepKnobs{}, [](auto) {});
  }
  if (!known) {
    return InvalidArgument(std::string(fn) + ": config " + cfg.Name() +
                           " is not compiled in (sweep variants: bf16 x only)");
  }
  if (N == 0) return Status::Ok();

  using detail::Aligned16;
  const bool vec = D % kVecWidth == 0 && Aligned16(dx) && Aligned16(dy) && Aligned16(x) &&
                   Aligned16(gamma) && (dr == nullptr || Aligned16(dr));
  float* part_gamma = static_cast<float*>(scratch);
  float* part_beta = nullptr;
  float* part_alpha = nullptr;
  detail::TileShape s{};
  // Launches `kernel` (vec: 8 channels per thread) on the persistent grid for `rows` rows per
  // thread; the scratch layout: part_gamma [gy][D], part_beta [gy][D], part_alpha [gy * gx].
  auto launch = [&](auto* kernel, int kVec, int rows) {
    const dim3 block = detail::RowTileBlock(D, kVec);
    const int threads = static_cast<int>(block.x * block.y);
    const size_t smem = (2 * threads * kVec + 32) * sizeof(float);
    s = detail::RowTileShape(N, D, kVec, rows, detail::ResidentBlocks(kernel, threads, smem));
    part_beta = part_gamma + static_cast<size_t>(s.grid.y) * D;
    part_alpha = part_beta + static_cast<size_t>(s.grid.y) * D;
    DYT_LAUNCH(kernel, s.grid, s.block, smem, stream, dx, part_gamma, part_beta, part_alpha, dy, x,
               dr, alpha, gamma, N, D);
  };
  detail::WithBool(dr != nullptr, [&](auto has_dr) {
    constexpr bool kDr = decltype(has_dr)::value;
    if (!vec || cfg.legacy) {
      detail::WithBool(vec, [&](auto v) {
        detail::WithBool(cfg.tanh == tuning::TanhImpl::kHardware, [&](auto fast) {
          constexpr int kVec = decltype(v)::value ? kVecWidth : 1;
          launch(DytBackwardKernel<kVec, R, kDr, decltype(fast)::value>, kVec, kLegacyBwdRows);
        });
      });
      return;
    }
    auto tiled = [&](auto k) {
      using K = decltype(k);
      launch(DytBackwardTiledKernel<R, kDr, K::rows, K::min_blocks, K::tanh>, kVecWidth, K::rows);
    };
    if constexpr (std::is_same_v<R, bf16>) {
      if (sweep && WithBwdKnobs(cfg, BwdSweepKnobs{}, tiled)) return;
    }
    WithBwdKnobs(cfg, BwdDefaultKnobs{}, tiled);
  });
  DYT_RETURN_IF_ERROR(LaunchStatus(fn));
  return CudaStatus(detail::LaunchAccumulateParamGrads(
                        dgamma, part_gamma, dbeta, part_beta, static_cast<int>(s.grid.y), D, dalpha,
                        part_alpha, static_cast<int>(s.grid.y * s.grid.x), stream),
                    "DytBackward: AccumulateParamGrads");
}

}  // namespace

Status DytForward(bf16* y, const bf16* x, const float* alpha, const float* gamma, const float* beta,
                  int64_t N, int D, cudaStream_t stream, TanhMode tanh_mode) {
  return LaunchForward<bf16>("DytForward", tuning::DefaultDytForwardConfig(tanh_mode), false, y,
                             nullptr, x, nullptr, alpha, gamma, beta, N, D, stream);
}

Status DytForward(bf16* y, const float* x, const float* alpha, const float* gamma,
                  const float* beta, int64_t N, int D, cudaStream_t stream, TanhMode tanh_mode) {
  return LaunchForward<float>("DytForward", tuning::DefaultDytForwardConfig(tanh_mode), false, y,
                              nullptr, x, nullptr, alpha, gamma, beta, N, D, stream);
}

Status ResidualDytForward(bf16* r_out, bf16* y, const bf16* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "r_out", r_out));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "d", d));
  return LaunchForward<bf16>("ResidualDytForward",
                             tuning::DefaultDytForwardConfig(tanh_mode, /*residual=*/true), false,
                             y, r_out, r, d, alpha, gamma, beta, N, D, stream);
}

Status ResidualDytForward(float* r_out, bf16* y, const float* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "r_out", r_out));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "d", d));
  return LaunchForward<float>("ResidualDytForward",
                              tuning::DefaultDytForwardConfig(tanh_mode, /*residual=*/true), false,
                              y, r_out, r, d, alpha, gamma, beta, N, D, stream);
}

namespace tuning {

std::string DytForwardConfig::Name() const {
  static const char* const kTanh[] = {"lib", "exp", "hw"};
  static const char* const kHint[] = {"cs", "nc", "na", "st"};
  const int t = static_cast<int>(tanh), h = static_cast<int>(hint);
  const std::string tanh_name = t >= 0 && t < 3 ? kTanh[t] : "?";
  if (legacy) return "legacy." + tanh_name;
  return "r" + std::to_string(rows) + ".b" + std::to_string(min_blocks) + "." + tanh_name + "." +
         (h >= 0 && h < 4 ? kHint[h] : "?") + ".w" + std::to_string(waves) + ".x" +
         std::to_string(block_x) + (max_grid_y > 0 ? ".g" + std::to_string(max_grid_y) : "");
}

bool DytForwardConfig::operator==(const DytForwardConfig& o) const {
  return legacy == o.legacy && rows == o.rows && min_blocks == o.min_blocks && tanh == o.tanh &&
         hint == o.hint && waves == o.waves && block_x == o.block_x && max_grid_y == o.max_grid_y;
}

DytForwardConfig DefaultDytForwardConfig(TanhMode mode, bool residual) {
  DytForwardConfig c;
  c.legacy = kFwdLegacy;
  c.rows = kFwdRows;
  c.min_blocks = kFwdMinBlocks;
  c.tanh = static_cast<TanhImpl>(mode == TanhMode::kFast ? kFwdFastTanh : kFwdAccurateTanh);
  c.hint = static_cast<CacheHint>(kFwdHint);
  c.waves = residual ? kResFwdWaves : kFwdWaves;
  c.block_x = kFwdBlockX;
  return c;
}

const std::vector<DytForwardConfig>& DytForwardConfigs(bool residual) {
  auto make = [](auto sweep) {
    std::vector<DytForwardConfig> v = {DefaultDytForwardConfig(TanhMode::kAccurate),
                                       DefaultDytForwardConfig(TanhMode::kFast)};
    for (TanhImpl t : {TanhImpl::kLibdevice, TanhImpl::kHardware}) {
      DytForwardConfig legacy;
      legacy.legacy = true;
      legacy.tanh = t;
      if (std::find(v.begin(), v.end(), legacy) == v.end()) v.push_back(legacy);
    }
    AppendConfigs(sweep, v);
    return v;
  };
  static const std::vector<DytForwardConfig> plain = make(FwdSweepPlain{});
  static const std::vector<DytForwardConfig> res = make(FwdSweepResidual{});
  return residual ? res : plain;
}

Status DytForwardTuned(const DytForwardConfig& cfg, bf16* y, const bf16* x, const float* alpha,
                       const float* gamma, const float* beta, int64_t N, int D,
                       cudaStream_t stream) {
  return LaunchForward<bf16>("DytForwardTuned", cfg, true, y, nullptr, x, nullptr, alpha, gamma,
                             beta, N, D, stream);
}

Status ResidualDytForwardTuned(const DytForwardConfig& cfg, bf16* r_out, bf16* y, const bf16* r,
                               const bf16* d, const float* alpha, const float* gamma,
                               const float* beta, int64_t N, int D, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForwardTuned", "r_out", r_out));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForwardTuned", "d", d));
  return LaunchForward<bf16>("ResidualDytForwardTuned", cfg, true, y, r_out, r, d, alpha, gamma,
                             beta, N, D, stream);
}

bool DytForwardKernelInfo(const DytForwardConfig& cfg, bool residual, int* registers,
                          int* blocks_per_sm) {
  const void* kernel = nullptr;
  detail::WithBool(residual, [&](auto res) {
    constexpr bool kRes = decltype(res)::value;
    if (cfg.legacy) {
      if (cfg.tanh == TanhImpl::kHardware) {
        kernel = reinterpret_cast<const void*>(DytForwardKernel<kVecWidth, bf16, kRes, true, true>);
      } else if (cfg.tanh == TanhImpl::kLibdevice) {
        kernel =
            reinterpret_cast<const void*>(DytForwardKernel<kVecWidth, bf16, kRes, true, false>);
      }
      return;
    }
    auto get = [&](auto k) {
      using K = decltype(k);
      kernel = reinterpret_cast<const void*>(
          DytForwardTiledKernel<bf16, kRes, true, K::rows, K::min_blocks, K::tanh, K::hint>);
    };
    if (!WithKnobs(cfg, FwdSweepKnobs<kRes>{}, get)) WithKnobs(cfg, FwdDefaultKnobs{}, get);
  });
  if (kernel == nullptr) return false;
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kBlockThreads, 0) !=
      cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  *registers = attr.numRegs;
  *blocks_per_sm = blocks;
  return true;
}

std::string DytBackwardConfig::Name() const {
  static const char* const kTanh[] = {"lib", "exp", "hw"};
  const int t = static_cast<int>(tanh);
  const std::string tanh_name = t >= 0 && t < 3 ? kTanh[t] : "?";
  if (legacy) return "legacy." + tanh_name;
  return "r" + std::to_string(rows) + ".b" + std::to_string(min_blocks) + "." + tanh_name;
}

bool DytBackwardConfig::operator==(const DytBackwardConfig& o) const {
  return legacy == o.legacy && rows == o.rows && min_blocks == o.min_blocks && tanh == o.tanh;
}

DytBackwardConfig DefaultDytBackwardConfig(TanhMode mode) {
  DytBackwardConfig c;
  c.legacy = kBwdLegacy;
  c.rows = kBwdRows;
  c.min_blocks = kBwdMinBlocks;
  c.tanh = static_cast<TanhImpl>(mode == TanhMode::kFast ? kFwdFastTanh : kFwdAccurateTanh);
  return c;
}

const std::vector<DytBackwardConfig>& DytBackwardConfigs() {
  static const std::vector<DytBackwardConfig> configs = [] {
    std::vector<DytBackwardConfig> v = {DefaultDytBackwardConfig(TanhMode::kAccurate),
                                        DefaultDytBackwardConfig(TanhMode::kFast)};
    for (TanhImpl t : {TanhImpl::kLibdevice, TanhImpl::kHardware}) {
      DytBackwardConfig legacy;
      legacy.legacy = true;
      legacy.tanh = t;
      if (std::find(v.begin(), v.end(), legacy) == v.end()) v.push_back(legacy);
    }
    AppendBwdConfigs(BwdSweepKnobs{}, v);
    return v;
  }();
  return configs;
}

Status DytBackwardTuned(const DytBackwardConfig& cfg, bf16* dx, float* dalpha, float* dgamma,
                        float* dbeta, const bf16* dy, const bf16* x, const bf16* dr,
                        const float* alpha, const float* gamma, int64_t N, int D, void* scratch,
                        size_t scratch_bytes, cudaStream_t stream) {
  return LaunchBackward<bf16>("DytBackwardTuned", cfg, true, dx, dalpha, dgamma, dbeta, dy, x, dr,
                              alpha, gamma, N, D, scratch, scratch_bytes, stream);
}

bool DytBackwardKernelInfo(const DytBackwardConfig& cfg, int* registers, int* blocks_per_sm) {
  const void* kernel = nullptr;
  if (cfg.legacy) {
    kernel = cfg.tanh == TanhImpl::kHardware
                 ? reinterpret_cast<const void*>(DytBackwardKernel<kVecWidth, bf16, true, true>)
                 : reinterpret_cast<const void*>(DytBackwardKernel<kVecWidth, bf16, true, false>);
  } else {
    auto get = [&](auto k) {
      using K = decltype(k);
      kernel = reinterpret_cast<const void*>(
          DytBackwardTiledKernel<bf16, true, K::rows, K::min_blocks, K::tanh>);
    };
    if (!WithBwdKnobs(cfg, BwdSweepKnobs{}, get)) WithBwdKnobs(cfg, BwdDefaultKnobs{}, get);
  }
  if (kernel == nullptr) return false;
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  const size_t smem = (2 * kBlockThreads * kVecWidth + 32) * sizeof(float);
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kBlockThreads, smem) !=
      cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  *registers = attr.numRegs;
  *blocks_per_sm = blocks;
  return true;
}

Status TanhForTest(TanhImpl impl, float* y, const float* x, int64_t n, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("TanhForTest", "y", y));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("TanhForTest", "x", x));
  if (n <= 0) return Status::Ok();
  const int blocks = static_cast<int>(std::min<int64_t>(CeilDiv(n, kBlockThreads), 4096));
  switch (impl) {
    case TanhImpl::kLibdevice:
      DYT_LAUNCH(TanhKernel<0>, blocks, kBlockThreads, 0, stream, y, x, n);
      break;
    case TanhImpl::kExpRcp:
      DYT_LAUNCH(TanhKernel<1>, blocks, kBlockThreads, 0, stream, y, x, n);
      break;
    case TanhImpl::kHardware:
      DYT_LAUNCH(TanhKernel<2>, blocks, kBlockThreads, 0, stream, y, x, n);
      break;
  }
  return LaunchStatus("TanhForTest");
}

}  // namespace tuning

size_t DytBackwardScratchBytes(int64_t N, int D) {
  if (N < 0 || D <= 0) return 0;
  size_t bytes = BackwardScratchBytesFor(N, D, 1);
  if (D % kVecWidth == 0) bytes = std::max(bytes, BackwardScratchBytesFor(N, D, kVecWidth));
  return bytes;
}

Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const bf16* x, const bf16* dr, const float* alpha, const float* gamma, int64_t N,
                   int D, void* scratch, size_t scratch_bytes, cudaStream_t stream,
                   TanhMode tanh_mode) {
  return LaunchBackward<bf16>("DytBackward", tuning::DefaultDytBackwardConfig(tanh_mode), false, dx,
                              dalpha, dgamma, dbeta, dy, x, dr, alpha, gamma, N, D, scratch,
                              scratch_bytes, stream);
}

Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const float* x, const bf16* dr, const float* alpha, const float* gamma,
                   int64_t N, int D, void* scratch, size_t scratch_bytes, cudaStream_t stream,
                   TanhMode tanh_mode) {
  return LaunchBackward<float>("DytBackward", tuning::DefaultDytBackwardConfig(tanh_mode), false,
                               dx, dalpha, dgamma, dbeta, dy, x, dr, alpha, gamma, N, D, scratch,
                               scratch_bytes, stream);
}

}  // namespace dyt::cuda
