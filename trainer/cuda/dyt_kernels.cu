// Dynamic Tanh kernels. Design notes:
//
// * Tiling. A block is (bx, by) threads: bx threads across the row, each owning kVec = 8
//   consecutive channels (one 16-byte access per bf16 tensor), by rows. A thread keeps its
//   channels for the whole kernel and walks down the rows (tiles of by * kRows rows, striding
//   by the grid), so gamma/beta sit in registers, loaded once, and the parameter-gradient
//   partials of the backward accumulate in registers with no shared memory until the end.
// * Memory-level parallelism. Each thread loads kRows rows of every input before using any of
//   them, so 4 (forward) or 2 (backward) independent 16-byte loads per tensor are in flight.
// * Persistent grid. The grid holds as many blocks as the GPU keeps resident at once (the
//   occupancy calculator, times the SM count), so the work is one full wave, no ragged tail.
// * Determinism. The grid shape depends only on (N, D) and the device, each block's
//   partials are combined in fixed order, and detail::LaunchAccumulateParamGrads adds the
//   block partials in fixed order: no float atomics.
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/dyt_kernels.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"

namespace dyt::cuda {

namespace {

using detail::CeilDiv;
using detail::kBlockThreads;
using detail::kVecWidth;

constexpr int kFwdRows = 4;
constexpr int kBwdRows = 2;

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

  const int64_t tile_rows = static_cast<int64_t>(blockDim.y) * kFwdRows;
  const int64_t grid_rows = tile_rows * gridDim.y;
  for (int64_t row0 = blockIdx.y * tile_rows + threadIdx.y; row0 < N; row0 += grid_rows) {
    float xv[kFwdRows][kVec];
    float dv[kFwdRows][kVec];
#pragma unroll
    for (int u = 0; u < kFwdRows; ++u) {
      const int64_t row = row0 + static_cast<int64_t>(u) * blockDim.y;
      if (row < N) {
        const int64_t off = row * D + c0;
        detail::LoadVec<kVec>(r + off, xv[u]);
        if constexpr (kResidual) detail::LoadVec<kVec>(d + off, dv[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < kFwdRows; ++u) {
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

// Partial sums go to part_gamma/part_beta [gridDim.y][D] and part_alpha
// [gridDim.y * gridDim.x]. Dynamic shared memory: (2 * threads * kVec + 32) floats.
template <int kVec, typename R, bool kDr, bool kFast>
__global__ void __launch_bounds__(kBlockThreads)
    DytBackwardKernel(bf16* dx, float* __restrict__ part_gamma, float* __restrict__ part_beta,
                      float* __restrict__ part_alpha, const bf16* __restrict__ dy,
                      const R* __restrict__ x, const bf16* dr, const float* __restrict__ alpha_p,
                      const float* __restrict__ gamma, int64_t N, int D) {
  extern __shared__ float smem[];
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
    const int64_t tile_rows = static_cast<int64_t>(blockDim.y) * kBwdRows;
    const int64_t grid_rows = tile_rows * gridDim.y;
    for (int64_t row0 = blockIdx.y * tile_rows + threadIdx.y; row0 < N; row0 += grid_rows) {
      float dyv[kBwdRows][kVec], xv[kBwdRows][kVec], drv[kBwdRows][kVec];
#pragma unroll
      for (int u = 0; u < kBwdRows; ++u) {
        const int64_t row = row0 + static_cast<int64_t>(u) * blockDim.y;
        if (row < N) {
          const int64_t off = row * D + c0;
          detail::LoadVec<kVec>(dy + off, dyv[u]);
          detail::LoadVec<kVec>(x + off, xv[u]);
          if constexpr (kDr) detail::LoadVec<kVec>(dr + off, drv[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kBwdRows; ++u) {
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

size_t BackwardScratchBytesFor(int64_t N, int D, int vec) {
  const dim3 block = detail::RowTileBlock(D, vec);
  const detail::TileShape s = detail::RowTileShape(
      N, D, vec, kBwdRows, detail::MaxResidentBlocks(static_cast<int>(block.x * block.y)));
  const size_t gy = s.grid.y, gx = s.grid.x;
  return (2 * gy * static_cast<size_t>(D) + gy * gx) * sizeof(float);
}

template <typename R>
Status LaunchForward(const char* fn, bf16* y, R* r_out, const R* r, const bf16* d,
                     const float* alpha, const float* gamma, const float* beta, int64_t N, int D,
                     cudaStream_t stream, TanhMode tanh_mode) {
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
  if (N == 0) return Status::Ok();

  using detail::Aligned16;
  const bool vec = D % kVecWidth == 0 && Aligned16(y) && Aligned16(r) && Aligned16(gamma) &&
                   (beta == nullptr || Aligned16(beta)) &&
                   (!residual || (Aligned16(r_out) && Aligned16(d)));
  detail::WithBool(vec, [&](auto v) {
    detail::WithBool(residual, [&](auto res) {
      detail::WithBool(beta != nullptr, [&](auto has_beta) {
        detail::WithBool(tanh_mode == TanhMode::kFast, [&](auto fast) {
          constexpr int kVec = decltype(v)::value ? kVecWidth : 1;
          auto* kernel = DytForwardKernel<kVec, R, decltype(res)::value, decltype(has_beta)::value,
                                          decltype(fast)::value>;
          const dim3 block = detail::RowTileBlock(D, kVec);
          const detail::TileShape s = detail::RowTileShape(
              N, D, kVec, kFwdRows,
              detail::ResidentBlocks(kernel, static_cast<int>(block.x * block.y), 0));
          kernel<<<s.grid, s.block, 0, stream>>>(y, r_out, r, d, alpha, gamma, beta, N, D);
        });
      });
    });
  });
  return LaunchStatus(fn);
}

template <typename R>
Status LaunchBackward(const char* fn, bf16* dx, float* dalpha, float* dgamma, float* dbeta,
                      const bf16* dy, const R* x, const bf16* dr, const float* alpha,
                      const float* gamma, int64_t N, int D, void* scratch, size_t scratch_bytes,
                      cudaStream_t stream, TanhMode tanh_mode) {
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
  if (N == 0) return Status::Ok();

  using detail::Aligned16;
  const bool vec = D % kVecWidth == 0 && Aligned16(dx) && Aligned16(dy) && Aligned16(x) &&
                   Aligned16(gamma) && (dr == nullptr || Aligned16(dr));
  float* part_gamma = static_cast<float*>(scratch);
  float* part_beta = nullptr;
  float* part_alpha = nullptr;
  detail::TileShape s{};
  detail::WithBool(vec, [&](auto v) {
    detail::WithBool(dr != nullptr, [&](auto has_dr) {
      detail::WithBool(tanh_mode == TanhMode::kFast, [&](auto fast) {
        constexpr int kVec = decltype(v)::value ? kVecWidth : 1;
        auto* kernel = DytBackwardKernel<kVec, R, decltype(has_dr)::value, decltype(fast)::value>;
        const dim3 block = detail::RowTileBlock(D, kVec);
        const int threads = static_cast<int>(block.x * block.y);
        const size_t smem = (2 * threads * kVec + 32) * sizeof(float);
        s = detail::RowTileShape(N, D, kVec, kBwdRows,
                                 detail::ResidentBlocks(kernel, threads, smem));
        // Scratch layout: part_gamma [gy][D], part_beta [gy][D], part_alpha [gy * gx].
        part_beta = part_gamma + static_cast<size_t>(s.grid.y) * D;
        part_alpha = part_beta + static_cast<size_t>(s.grid.y) * D;
        kernel<<<s.grid, s.block, smem, stream>>>(dx, part_gamma, part_beta, part_alpha, dy, x, dr,
                                                  alpha, gamma, N, D);
      });
    });
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
  return LaunchForward<bf16>("DytForward", y, nullptr, x, nullptr, alpha, gamma, beta, N, D, stream,
                             tanh_mode);
}

Status DytForward(bf16* y, const float* x, const float* alpha, const float* gamma,
                  const float* beta, int64_t N, int D, cudaStream_t stream, TanhMode tanh_mode) {
  return LaunchForward<float>("DytForward", y, nullptr, x, nullptr, alpha, gamma, beta, N, D,
                              stream, tanh_mode);
}

Status ResidualDytForward(bf16* r_out, bf16* y, const bf16* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "r_out", r_out));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "d", d));
  return LaunchForward<bf16>("ResidualDytForward", y, r_out, r, d, alpha, gamma, beta, N, D, stream,
                             tanh_mode);
}

Status ResidualDytForward(float* r_out, bf16* y, const float* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "r_out", r_out));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualDytForward", "d", d));
  return LaunchForward<float>("ResidualDytForward", y, r_out, r, d, alpha, gamma, beta, N, D,
                              stream, tanh_mode);
}

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
  return LaunchBackward<bf16>("DytBackward", dx, dalpha, dgamma, dbeta, dy, x, dr, alpha, gamma, N,
                              D, scratch, scratch_bytes, stream, tanh_mode);
}

Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const float* x, const bf16* dr, const float* alpha, const float* gamma,
                   int64_t N, int D, void* scratch, size_t scratch_bytes, cudaStream_t stream,
                   TanhMode tanh_mode) {
  return LaunchBackward<float>("DytBackward", dx, dalpha, dgamma, dbeta, dy, x, dr, alpha, gamma, N,
                               D, scratch, scratch_bytes, stream, tanh_mode);
}

}  // namespace dyt::cuda
