// RMSNorm kernels. One block per row at a time, striding over rows (a persistent grid: as
// many blocks as the GPU holds at once); each thread holds kPT vectors of kVec channels of
// the row in registers between the reduction and the output (vector path), or re-reads the
// row (scalar path). Per-thread dw partials stay in registers
// (the thread's channels are fixed) and go to scratch once per block; the fixed-order second
// stage (detail::LaunchAccumulateParamGrads) adds them into dw.
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"
#include "trainer/cuda/rmsnorm_kernels.h"

namespace dyt::cuda {

namespace {

using detail::CeilDiv;
using detail::kVecWidth;

constexpr int kMaxRowThreads = 512;
constexpr int kGenericThreads = 256;
constexpr int kMaxFwdPerThread = 4;
constexpr int kMaxBwdPerThread = 2;

// Threads per row and vectors per thread of the vector path (per_thread 0: not supported).
struct RowShape {
  int threads = 0;
  int per_thread = 0;
};

RowShape VectorRowShape(int D, int max_per_thread) {
  RowShape s;
  const int cols_v = D / kVecWidth;
  int pt = 1;
  while (CeilDiv(cols_v, pt) > kMaxRowThreads && pt < max_per_thread) pt *= 2;
  if (CeilDiv(cols_v, pt) > kMaxRowThreads) return s;
  s.per_thread = pt;
  s.threads = detail::RoundUp(static_cast<int>(CeilDiv(cols_v, pt)), 32);
  return s;
}

// A persistent grid: one block per row, at most as many as the GPU holds at once.
template <typename Kernel>
int GridBlocks(Kernel kernel, int64_t N, int threads) {
  return static_cast<int>(std::min<int64_t>(N, detail::ResidentBlocks(kernel, threads, 0)));
}

// ---- forward ------------------------------------------------------------------------------

template <int kVec, int kPT, typename R, bool kResidual>
__global__ void __launch_bounds__(kMaxRowThreads)
    RmsNormForwardKernel(bf16* __restrict__ y, float* __restrict__ rstd_out, R* r_out, const R* r,
                         const bf16* __restrict__ d, const float* __restrict__ w, float eps,
                         int64_t N, int D) {
  __shared__ float s_red[32];
  const int cols_v = D / kVec;
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const int64_t base = row * D;
    float xv[kPT][kVec];
    float dv[kPT][kVec];
#pragma unroll
    for (int i = 0; i < kPT; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < cols_v) {
        detail::LoadVec<kVec>(r + base + j * kVec, xv[i]);
        if constexpr (kResidual) detail::LoadVec<kVec>(d + base + j * kVec, dv[i]);
      }
    }
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < kPT; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < cols_v) {
        if constexpr (kResidual) {
#pragma unroll
          for (int k = 0; k < kVec; ++k) xv[i][k] = detail::RoundTo<R>(xv[i][k] + dv[i][k]);
          detail::StoreVec<kVec>(r_out + base + j * kVec, xv[i]);
        }
#pragma unroll
        for (int k = 0; k < kVec; ++k) ss += xv[i][k] * xv[i][k];
      }
    }
    const float rs = rsqrtf(detail::BlockSum(ss, s_red) / D + eps);
    if (threadIdx.x == 0 && rstd_out != nullptr) rstd_out[row] = rs;
#pragma unroll
    for (int i = 0; i < kPT; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < cols_v) {
        float wv[kVec], out[kVec];
        detail::LoadParams<kVec>(w + j * kVec, wv);
#pragma unroll
        for (int k = 0; k < kVec; ++k) out[k] = xv[i][k] * rs * wv[k];
        detail::StoreVec<kVec>(y + base + j * kVec, out);
      }
    }
  }
}

// Any D and alignment: scalar accesses, the row read twice (the second time from cache).
template <typename R, bool kResidual>
__global__ void __launch_bounds__(kGenericThreads)
    RmsNormForwardGenericKernel(bf16* __restrict__ y, float* __restrict__ rstd_out, R* r_out,
                                const R* r, const bf16* __restrict__ d, const float* __restrict__ w,
                                float eps, int64_t N, int D) {
  __shared__ float s_red[32];
  // With the residual add, the second pass reads back r_out (this thread wrote those elements).
  const R* x = kResidual ? r_out : r;
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const int64_t base = row * D;
    float ss = 0.f;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
      float v = detail::ToFloat(r[base + c]);
      if constexpr (kResidual) {
        v = detail::RoundTo<R>(v + detail::ToFloat(d[base + c]));
        detail::StoreOne(r_out + base + c, v);
      }
      ss += v * v;
    }
    const float rs = rsqrtf(detail::BlockSum(ss, s_red) / D + eps);
    if (threadIdx.x == 0 && rstd_out != nullptr) rstd_out[row] = rs;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
      detail::StoreOne(y + base + c, detail::ToFloat(x[base + c]) * rs * __ldg(w + c));
    }
  }
}

// ---- backward -----------------------------------------------------------------------------

// dw partials go to part_w [gridDim.x][D].
template <int kVec, int kPT, typename R, bool kDr>
__global__ void __launch_bounds__(kMaxRowThreads)
    RmsNormBackwardKernel(bf16* dx, float* __restrict__ part_w, const bf16* __restrict__ dy,
                          const R* __restrict__ x, const float* __restrict__ rstd,
                          const float* __restrict__ w, const bf16* dr, int64_t N, int D) {
  __shared__ float s_red[32];
  const int cols_v = D / kVec;
  float acc[kPT][kVec];
#pragma unroll
  for (int i = 0; i < kPT; ++i) {
#pragma unroll
    for (int k = 0; k < kVec; ++k) acc[i][k] = 0.f;
  }
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const int64_t base = row * D;
    float dyv[kPT][kVec], xv[kPT][kVec], drv[kPT][kVec];
#pragma unroll
    for (int i = 0; i < kPT; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < cols_v) {
        detail::LoadVec<kVec>(dy + base + j * kVec, dyv[i]);
        detail::LoadVec<kVec>(x + base + j * kVec, xv[i]);
        if constexpr (kDr) detail::LoadVec<kVec>(dr + base + j * kVec, drv[i]);
      }
    }
    const float rs = __ldg(rstd + row);
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < kPT; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < cols_v) {
        float wv[kVec];
        detail::LoadParams<kVec>(w + j * kVec, wv);
#pragma unroll
        for (int k = 0; k < kVec; ++k) dot += wv[k] * dyv[i][k] * xv[i][k];
      }
    }
    const float coeff = detail::BlockSum(dot, s_red) / D * rs * rs * rs;
#pragma unroll
    for (int i = 0; i < kPT; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < cols_v) {
        float wv[kVec], out[kVec];
        detail::LoadParams<kVec>(w + j * kVec, wv);
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          out[k] = rs * wv[k] * dyv[i][k] - xv[i][k] * coeff;
          if constexpr (kDr) out[k] += drv[i][k];
          acc[i][k] += dyv[i][k] * xv[i][k] * rs;
        }
        detail::StoreVec<kVec>(dx + base + j * kVec, out);
      }
    }
  }
  float* part = part_w + static_cast<int64_t>(blockIdx.x) * D;
#pragma unroll
  for (int i = 0; i < kPT; ++i) {
    const int j = threadIdx.x + i * blockDim.x;
    if (j < cols_v) detail::StoreVec<kVec>(part + j * kVec, acc[i]);
  }
}

// Any D and alignment. The block's dw partials accumulate directly in its own scratch row
// (each element owned by one thread, so no atomics and a fixed order).
template <typename R, bool kDr>
__global__ void __launch_bounds__(kGenericThreads)
    RmsNormBackwardGenericKernel(bf16* dx, float* __restrict__ part_w, const bf16* __restrict__ dy,
                                 const R* __restrict__ x, const float* __restrict__ rstd,
                                 const float* __restrict__ w, const bf16* dr, int64_t N, int D) {
  __shared__ float s_red[32];
  float* part = part_w + static_cast<int64_t>(blockIdx.x) * D;
  for (int c = threadIdx.x; c < D; c += blockDim.x) part[c] = 0.f;
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const int64_t base = row * D;
    const float rs = __ldg(rstd + row);
    float dot = 0.f;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
      dot += __ldg(w + c) * detail::ToFloat(dy[base + c]) * detail::ToFloat(x[base + c]);
    }
    const float coeff = detail::BlockSum(dot, s_red) / D * rs * rs * rs;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
      const float g = detail::ToFloat(dy[base + c]);
      const float xc = detail::ToFloat(x[base + c]);
      float out = rs * __ldg(w + c) * g - xc * coeff;
      if constexpr (kDr) out += detail::ToFloat(dr[base + c]);
      part[c] += g * xc * rs;
      detail::StoreOne(dx + base + c, out);
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------

template <typename F>
void WithPerThread(int pt, F&& f) {
  switch (pt) {
    case 1:
      f(std::integral_constant<int, 1>{});
      break;
    case 2:
      f(std::integral_constant<int, 2>{});
      break;
    default:
      f(std::integral_constant<int, 4>{});
      break;
  }
}

template <typename R>
Status LaunchForward(const char* fn, bf16* y, float* rstd, R* r_out, const R* r, const bf16* d,
                     const float* w, float eps, int64_t N, int D, cudaStream_t stream) {
  const bool residual = d != nullptr || r_out != nullptr;
  DYT_RETURN_IF_ERROR(detail::CheckShape(fn, N, D));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "y", y));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, residual ? "r" : "x", r));
  if (residual) {
    DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "r_out", r_out));
    DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "d", d));
  }
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "w", w));
  if (N == 0) return Status::Ok();

  using detail::Aligned16;
  const RowShape vs = VectorRowShape(D, kMaxFwdPerThread);
  const bool vec = D % kVecWidth == 0 && vs.per_thread > 0 && Aligned16(y) && Aligned16(r) &&
                   Aligned16(w) && (!residual || (Aligned16(r_out) && Aligned16(d)));
  detail::WithBool(residual, [&](auto res) {
    constexpr bool kRes = decltype(res)::value;
    if (vec) {
      WithPerThread(vs.per_thread, [&](auto pt) {
        auto* kernel = RmsNormForwardKernel<kVecWidth, decltype(pt)::value, R, kRes>;
        DYT_LAUNCH(kernel, GridBlocks(kernel, N, vs.threads), vs.threads, 0, stream, y, rstd, r_out,
                   r, d, w, eps, N, D);
      });
    } else {
      auto* kernel = RmsNormForwardGenericKernel<R, kRes>;
      DYT_LAUNCH(kernel, GridBlocks(kernel, N, kGenericThreads), kGenericThreads, 0, stream, y,
                 rstd, r_out, r, d, w, eps, N, D);
    }
  });
  return LaunchStatus(fn);
}

// An upper bound of the backward grid (blocks by thread count alone) times D floats.
size_t ScratchBytes(int64_t N, int D) {
  if (N <= 0 || D <= 0) return 0;
  int64_t blocks = std::min(N, detail::MaxResidentBlocks(kGenericThreads));
  if (D % kVecWidth == 0) {
    const RowShape vs = VectorRowShape(D, kMaxBwdPerThread);
    if (vs.per_thread > 0) {
      blocks = std::max(blocks, std::min(N, detail::MaxResidentBlocks(vs.threads)));
    }
  }
  return static_cast<size_t>(blocks) * D * sizeof(float);
}

template <typename R>
Status LaunchBackward(const char* fn, bf16* dx, float* dw, const bf16* dy, const R* x,
                      const float* rstd, const float* w, const bf16* dr, int64_t N, int D,
                      void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(detail::CheckShape(fn, N, D));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "dx", dx));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "dw", dw));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "dy", dy));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "x", x));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "rstd", rstd));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "w", w));
  DYT_RETURN_IF_ERROR(detail::CheckScratch(fn, scratch, scratch_bytes, ScratchBytes(N, D)));
  if (N == 0) return Status::Ok();

  using detail::Aligned16;
  const RowShape vs = VectorRowShape(D, kMaxBwdPerThread);
  // The vector path also writes its dw partials 16 bytes at a time into scratch.
  const bool vec = D % kVecWidth == 0 && vs.per_thread > 0 && Aligned16(dx) && Aligned16(dy) &&
                   Aligned16(x) && Aligned16(w) && (dr == nullptr || Aligned16(dr)) &&
                   Aligned16(scratch);
  float* part_w = static_cast<float*>(scratch);
  int blocks = 0;
  detail::WithBool(dr != nullptr, [&](auto has_dr) {
    constexpr bool kDr = decltype(has_dr)::value;
    if (vec) {
      WithPerThread(vs.per_thread, [&](auto pt) {
        if constexpr (decltype(pt)::value <= kMaxBwdPerThread) {
          auto* kernel = RmsNormBackwardKernel<kVecWidth, decltype(pt)::value, R, kDr>;
          blocks = GridBlocks(kernel, N, vs.threads);
          DYT_LAUNCH(kernel, blocks, vs.threads, 0, stream, dx, part_w, dy, x, rstd, w, dr, N, D);
        }
      });
    } else {
      auto* kernel = RmsNormBackwardGenericKernel<R, kDr>;
      blocks = GridBlocks(kernel, N, kGenericThreads);
      DYT_LAUNCH(kernel, blocks, kGenericThreads, 0, stream, dx, part_w, dy, x, rstd, w, dr, N, D);
    }
  });
  DYT_RETURN_IF_ERROR(LaunchStatus(fn));
  return CudaStatus(detail::LaunchAccumulateParamGrads(dw, part_w, nullptr, nullptr, blocks, D,
                                                       nullptr, nullptr, 0, stream),
                    "RmsNormBackward: AccumulateParamGrads");
}

}  // namespace

Status RmsNormForward(bf16* y, float* rstd, const bf16* x, const float* w, float eps, int64_t N,
                      int D, cudaStream_t stream) {
  return LaunchForward<bf16>("RmsNormForward", y, rstd, nullptr, x, nullptr, w, eps, N, D, stream);
}

Status RmsNormForward(bf16* y, float* rstd, const float* x, const float* w, float eps, int64_t N,
                      int D, cudaStream_t stream) {
  return LaunchForward<float>("RmsNormForward", y, rstd, nullptr, x, nullptr, w, eps, N, D, stream);
}

Status ResidualRmsNormForward(bf16* r_out, bf16* y, float* rstd, const bf16* r, const bf16* d,
                              const float* w, float eps, int64_t N, int D, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualRmsNormForward", "r_out", r_out));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualRmsNormForward", "d", d));
  return LaunchForward<bf16>("ResidualRmsNormForward", y, rstd, r_out, r, d, w, eps, N, D, stream);
}

Status ResidualRmsNormForward(float* r_out, bf16* y, float* rstd, const float* r, const bf16* d,
                              const float* w, float eps, int64_t N, int D, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualRmsNormForward", "r_out", r_out));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull("ResidualRmsNormForward", "d", d));
  return LaunchForward<float>("ResidualRmsNormForward", y, rstd, r_out, r, d, w, eps, N, D, stream);
}

size_t RmsNormBackwardScratchBytes(int64_t N, int D) { return ScratchBytes(N, D); }

Status RmsNormBackward(bf16* dx, float* dw, const bf16* dy, const bf16* x, const float* rstd,
                       const float* w, const bf16* dr, int64_t N, int D, void* scratch,
                       size_t scratch_bytes, cudaStream_t stream) {
  return LaunchBackward<bf16>("RmsNormBackward", dx, dw, dy, x, rstd, w, dr, N, D, scratch,
                              scratch_bytes, stream);
}

Status RmsNormBackward(bf16* dx, float* dw, const bf16* dy, const float* x, const float* rstd,
                       const float* w, const bf16* dr, int64_t N, int D, void* scratch,
                       size_t scratch_bytes, cudaStream_t stream) {
  return LaunchBackward<float>("RmsNormBackward", dx, dw, dy, x, rstd, w, dr, N, D, scratch,
                               scratch_bytes, stream);
}

}  // namespace dyt::cuda
