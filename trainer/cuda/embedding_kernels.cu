// Embedding kernels (embedding_kernels.h).
//  Forward: one block per row at a time (striding over the N rows), threads across the row's
//    D floats, 4 per step (float4) when D % 4 == 0 and x, table 16-byte aligned, else 1.
//  Backward: one block per token group at a time (striding over the groups); thread j owns
//    the channels [j * kVec, j * kVec + kVec) (+ multiples of blockDim.x * kVec) and sums dx of
//    the group's positions in position order in fp32, then dtable[token] += scale * sum. The
//    group's dscale partial, sum over channels c of sum_c * table[token, c] (the sum over its
//    positions of dot(dx[n], table[token]) up to rounding), is added per thread in fp64 and
//    over the block by the fixed BlockSumDouble; it goes to scratch[g]. A last one-block launch
//    adds the partials in group order and does *dscale += float(total). Vector path: 8
//    channels per step (16 bytes of bf16 dx, two float4 of table / dtable) when D % 8 == 0 and
//    dx, table, dtable are 16-byte aligned. No atomics: the bits depend only on the index and
//    D.
#include <algorithm>
#include <cstdint>
#include <string>

#include "trainer/cuda/block_reduce.cuh"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/embedding_kernels.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"

namespace dyt::cuda {
namespace {

constexpr int kEmbedMaxThreads = 256;

int ThreadsFor(int steps) { return std::min(kEmbedMaxThreads, detail::RoundUp(steps, 32)); }

template <int kVec>
__global__ void __launch_bounds__(kEmbedMaxThreads)
    EmbeddingForwardKernel(float* __restrict__ x, const int32_t* __restrict__ tokens,
                           const float* __restrict__ table, const float* __restrict__ scale,
                           int64_t N, int D) {
  const float sc = scale != nullptr ? __ldg(scale) : 1.0f;
  const int steps = D / kVec;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* e = table + int64_t{__ldg(tokens + n)} * D;
    float* xr = x + n * D;
    for (int j = threadIdx.x; j < steps; j += blockDim.x) {
      float v[kVec];
      detail::LoadParams<kVec>(e + j * kVec, v);
#pragma unroll
      for (int k = 0; k < kVec; ++k) v[k] *= sc;
      detail::StoreVec<kVec>(xr + j * kVec, v);
    }
  }
}

template <int kVec, bool kScale>
__global__ void __launch_bounds__(kEmbedMaxThreads)
    EmbeddingBackwardKernel(float* __restrict__ dtable, double* __restrict__ partials,
                            const bf16* __restrict__ dx, const int32_t* __restrict__ unique,
                            const int32_t* __restrict__ offsets,
                            const int32_t* __restrict__ positions, const float* __restrict__ table,
                            const float* __restrict__ scale, int n_unique, int D) {
  __shared__ double smem[32];
  const float sc = scale != nullptr ? __ldg(scale) : 1.0f;
  const int steps = D / kVec;
  for (int g = blockIdx.x; g < n_unique; g += gridDim.x) {
    const int64_t token = __ldg(unique + g);
    const int begin = __ldg(offsets + g);
    const int end = __ldg(offsets + g + 1);
    float* dt = dtable + token * D;
    double part = 0.0;
    for (int j = threadIdx.x; j < steps; j += blockDim.x) {
      float acc[kVec];
#pragma unroll
      for (int k = 0; k < kVec; ++k) acc[k] = 0.0f;
      for (int p = begin; p < end; ++p) {
        const int64_t pos = __ldg(positions + p);
        float d[kVec];
        detail::LoadVec<kVec>(dx + pos * D + j * kVec, d);
#pragma unroll
        for (int k = 0; k < kVec; ++k) acc[k] += d[k];
      }
      float t[kVec];
      detail::LoadVec<kVec>(dt + j * kVec, t);
#pragma unroll
      for (int k = 0; k < kVec; ++k) t[k] += sc * acc[k];
      detail::StoreVec<kVec>(dt + j * kVec, t);
      if constexpr (kScale) {
        float e[kVec];
        detail::LoadParams<kVec>(table + token * D + j * kVec, e);
#pragma unroll
        for (int k = 0; k < kVec; ++k) part += static_cast<double>(acc[k]) * e[k];
      }
    }
    if constexpr (kScale) {
      const double s = detail::BlockSumDouble(part, smem);  // every thread of the block calls it
      if (threadIdx.x == 0) partials[g] = s;
    }
  }
}

constexpr int kSumThreads = 256;

__global__ void __launch_bounds__(kSumThreads)
    AddPartialsKernel(float* __restrict__ dscale, const double* __restrict__ partials, int P) {
  __shared__ double smem[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < P; i += blockDim.x) acc += partials[i];
  const double s = detail::BlockSumDouble(acc, smem);
  if (threadIdx.x == 0) *dscale += static_cast<float>(s);
}

}  // namespace

Status EmbeddingForward(float* x, const int32_t* tokens, const float* table, const float* scale,
                        int64_t N, int D, cudaStream_t stream) {
  constexpr const char* kFn = "EmbeddingForward";
  DYT_RETURN_IF_ERROR(detail::CheckShape(kFn, N, D));
  if (N == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "x", x));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "tokens", tokens));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "table", table));
  const bool vec = D % 4 == 0 && detail::Aligned16(x) && detail::Aligned16(table);
  const int threads = ThreadsFor(vec ? D / 4 : D);
  const unsigned grid =
      static_cast<unsigned>(std::min<int64_t>(N, detail::MaxResidentBlocks(threads)));
  if (vec) {
    DYT_LAUNCH(EmbeddingForwardKernel<4>, grid, threads, 0, stream, x, tokens, table, scale, N, D);
  } else {
    DYT_LAUNCH(EmbeddingForwardKernel<1>, grid, threads, 0, stream, x, tokens, table, scale, N, D);
  }
  return LaunchStatus("EmbeddingForwardKernel");
}

size_t EmbeddingBackwardScratchBytes(int n_unique) {
  return static_cast<size_t>(std::max(n_unique, 0)) * sizeof(double);
}

Status EmbeddingBackward(float* dtable, float* dscale, const bf16* dx, const EmbeddingIndex& index,
                         const float* table, const float* scale, int64_t N, int D, void* scratch,
                         size_t scratch_bytes, cudaStream_t stream) {
  constexpr const char* kFn = "EmbeddingBackward";
  DYT_RETURN_IF_ERROR(detail::CheckShape(kFn, N, D));
  if (index.n_unique < 0 || index.n_unique > N) {
    return InvalidArgument(std::string(kFn) + ": index.n_unique=" + std::to_string(index.n_unique) +
                           " must be in [0, N=" + std::to_string(N) + "]");
  }
  if (N > 0 && index.n_unique == 0) {
    return InvalidArgument(std::string(kFn) + ": index.n_unique=0 with N=" + std::to_string(N) +
                           " (every position belongs to a group)");
  }
  if (N == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "dtable", dtable));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "dx", dx));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "index.unique", index.unique));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "index.offsets", index.offsets));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "index.positions", index.positions));
  const bool with_scale = dscale != nullptr;
  double* partials = nullptr;
  if (with_scale) {
    DYT_RETURN_IF_ERROR(detail::CheckNotNull(kFn, "table", table));
    DYT_RETURN_IF_ERROR(detail::CheckScratch(kFn, scratch, scratch_bytes,
                                             EmbeddingBackwardScratchBytes(index.n_unique)));
    if ((reinterpret_cast<uintptr_t>(scratch) & 7u) != 0) {
      return InvalidArgument(std::string(kFn) + ": scratch must be 8-byte aligned");
    }
    partials = static_cast<double*>(scratch);
  }
  const bool vec = D % 8 == 0 && detail::Aligned16(dx) && detail::Aligned16(dtable) &&
                   (!with_scale || detail::Aligned16(table));
  const int threads = ThreadsFor(vec ? D / 8 : D);
  const unsigned grid =
      static_cast<unsigned>(std::min<int64_t>(index.n_unique, detail::MaxResidentBlocks(threads)));
  detail::WithBool(with_scale, [&](auto ks) {
    constexpr bool kScale = decltype(ks)::value;
    auto* kernel = vec ? EmbeddingBackwardKernel<8, kScale> : EmbeddingBackwardKernel<1, kScale>;
    DYT_LAUNCH(kernel, grid, threads, 0, stream, dtable, partials, dx, index.unique, index.offsets,
               index.positions, table, scale, index.n_unique, D);
  });
  DYT_RETURN_IF_ERROR(LaunchStatus("EmbeddingBackwardKernel"));
  if (with_scale) {
    DYT_LAUNCH(AddPartialsKernel, 1, kSumThreads, 0, stream, dscale, partials, index.n_unique);
    DYT_RETURN_IF_ERROR(LaunchStatus("EmbeddingBackward (AddPartialsKernel)"));
  }
  return Status::Ok();
}

}  // namespace dyt::cuda
