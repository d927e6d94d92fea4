// Cross-entropy kernels (cross_entropy_kernels.h). One block per row at a time, striding over
// the N rows (the grid is capped so the rows in flight fit comfortably in L2, kL2RowBudget).
//  Pass 1: each thread keeps a running (max m, sum s of e^(x - m)) over its elements, 8 bf16
//    per 16-byte load, kUnroll loads in flight (a row that does not start on a 16-byte
//    boundary, or whose V is not a multiple of 8, has a head and a tail of at most 7 elements
//    read one at a time by the first threads); the block merges the threads' pairs with a fixed
//    butterfly inside each warp and then the warps in order, so every thread gets the same (M, S)
//    bits.
//  Loss: log(S) + M - logit[target] (in double from the fp32 terms, as the CPU twin).
//  Pass 2 (forward-backward only): each thread re-reads its own elements (mostly from L2) and
//    writes (e^(x - M) * (grad_scale / S) - grad_scale * [i == target]) as bf16, in place.
//    The target's logit was read by thread 0 before the block's barriers, so before any write.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "trainer/cuda/cross_entropy_kernels.h"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"

namespace dyt::cuda {
namespace {

constexpr int kCeMaxThreads = 512;
constexpr int kUnroll = 4;
// Bytes of logit rows in flight at once: about half of an H100's 50 MB L2, so pass 2 finds
// its row there.
constexpr int64_t kL2RowBudget = int64_t{24} << 20;

// kVec consecutive logits as floats (plain load: cached, pass 2 reads them again).
template <int kVec>
__device__ __forceinline__ void LoadLogits(const bf16* p, float (&v)[kVec]) {
  if constexpr (kVec == 1) {
    v[0] = __bfloat162float(*p);
  } else {
    static_assert(kVec == 8, "vectors are 8 bf16");
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(h[i]);
      v[2 * i] = f.x;
      v[2 * i + 1] = f.y;
    }
  }
}

// Folds kVec values into the running (m, s).
template <int kVec>
__device__ __forceinline__ void Accumulate(const float (&v)[kVec], float& m, float& s) {
  float vmax = v[0];
#pragma unroll
  for (int k = 1; k < kVec; ++k) vmax = fmaxf(vmax, v[k]);
  if (vmax > m) {
    s *= __expf(m - vmax);  // m = -inf: s is 0 and stays 0
    m = vmax;
  }
  if (m == -INFINITY) return;  // only -inf seen so far: nothing to add
#pragma unroll
  for (int k = 0; k < kVec; ++k) s += __expf(v[k] - m);
}

// (m, s) <- merge of (m, s) and (mo, so). Symmetric in its two operands (same bits either
// way), so both lanes of a butterfly exchange compute the same value.
__device__ __forceinline__ void Merge(float& m, float& s, float mo, float so) {
  const float mm = fmaxf(m, mo);
  if (mm == -INFINITY) return;  // both empty
  const float a = m == -INFINITY ? 0.0f : s * __expf(m - mm);
  const float b = mo == -INFINITY ? 0.0f : so * __expf(mo - mm);
  m = mm;
  s = a + b;
}

template <bool kAligned, bool kBackward>
__global__ void __launch_bounds__(kCeMaxThreads)
    CrossEntropyKernel(bf16* logits, float* __restrict__ losses,
                       const int32_t* __restrict__ targets, int64_t N, int V, float grad_scale) {
  __shared__ float sm_m[32];
  __shared__ float sm_s[32];
  const int nt = blockDim.x;
  const int nwarps = nt / 32;
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    bf16* x = logits + row * V;
    // The row as [head | body of 16-byte vectors | tail]: head < 8 elements up to the first
    // 16-byte boundary, tail < 8 after the last whole vector. kAligned (V % 8 == 0 and logits
    // 16-byte aligned): every row is all body.
    int head = 0;
    if constexpr (!kAligned) {
      const int mis = static_cast<int>((reinterpret_cast<uintptr_t>(x) >> 1) & 7);
      head = min((8 - mis) & 7, V);
    }
    const int body = (V - head) / 8;
    const int tail0 = head + body * 8;
    bf16* xb = x + head;
    const int tgt = __ldg(targets + row);
    float xt = 0.0f;
    if (threadIdx.x == 0) xt = __bfloat162float(x[tgt]);

    // ---- pass 1: running max and sum of exponentials ----
    float m = -INFINITY, s = 0.0f;
    if constexpr (!kAligned) {
      if (static_cast<int>(threadIdx.x) < head) {
        float v[1];
        LoadLogits<1>(x + threadIdx.x, v);
        Accumulate<1>(v, m, s);
      }
    }
    int j = threadIdx.x;
    for (; j + (kUnroll - 1) * nt < body; j += kUnroll * nt) {
      float v[kUnroll][8];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) LoadLogits<8>(xb + (j + u * nt) * 8, v[u]);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) Accumulate<8>(v[u], m, s);
    }
    for (; j < body; j += nt) {
      float v[8];
      LoadLogits<8>(xb + j * 8, v);
      Accumulate<8>(v, m, s);
    }
    if constexpr (!kAligned) {
      if (tail0 + static_cast<int>(threadIdx.x) < V) {  // tail < 8 <= blockDim.x elements
        float v[1];
        LoadLogits<1>(x + tail0 + threadIdx.x, v);
        Accumulate<1>(v, m, s);
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float mo = __shfl_xor_sync(0xffffffffu, m, offset);
      const float so = __shfl_xor_sync(0xffffffffu, s, offset);
      Merge(m, s, mo, so);
    }
    if ((threadIdx.x & 31) == 0) {
      sm_m[threadIdx.x >> 5] = m;
      sm_s[threadIdx.x >> 5] = s;
    }
    __syncthreads();
    float M = sm_m[0], S = sm_s[0];
    for (int w = 1; w < nwarps; ++w) Merge(M, S, sm_m[w], sm_s[w]);
    __syncthreads();  // sm_* are rewritten by the next row

    if (threadIdx.x == 0) {
      losses[row] = static_cast<float>(static_cast<double>(logf(S)) + static_cast<double>(M) -
                                       static_cast<double>(xt));
    }

    // ---- pass 2: dlogits = softmax * grad_scale - grad_scale * onehot ----
    if constexpr (kBackward) {
      const float inv = grad_scale / S;
      // One element at index i (head or tail).
      auto scalar = [&](int i) {
        const float e = __expf(__bfloat162float(x[i]) - M) * inv;
        x[i] = __float2bfloat16_rn(i == tgt ? e - grad_scale : e);
      };
      if constexpr (!kAligned) {
        if (static_cast<int>(threadIdx.x) < head) scalar(threadIdx.x);
      }
      for (j = threadIdx.x; j < body; j += nt) {
        float v[8];
        LoadLogits<8>(xb + j * 8, v);
        const int i0 = head + j * 8;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          v[k] = __expf(v[k] - M) * inv;
          if (i0 + k == tgt) v[k] -= grad_scale;
        }
        detail::StoreVec<8>(xb + j * 8, v);
      }
      if constexpr (!kAligned) {
        if (tail0 + static_cast<int>(threadIdx.x) < V) scalar(tail0 + threadIdx.x);
      }
    }
  }
}

template <bool kBackward>
Status Launch(const char* fn, bf16* logits, float* losses, const int32_t* targets, int64_t N, int V,
              float grad_scale, cudaStream_t stream) {
  if (N < 0) return InvalidArgument(std::string(fn) + ": N=" + std::to_string(N) + " must be >= 0");
  if (V <= 0) return InvalidArgument(std::string(fn) + ": V=" + std::to_string(V) + " must be > 0");
  if (N == 0) return Status::Ok();
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "logits", logits));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "losses", losses));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "targets", targets));
  const bool aligned = V % 8 == 0 && detail::Aligned16(logits);
  if ((reinterpret_cast<uintptr_t>(logits) & 1u) != 0) {
    return InvalidArgument(std::string(fn) + ": logits must be 2-byte aligned");
  }
  // Threads: one per 16-byte vector of the row, at most kCeMaxThreads, at least one warp (the
  // scalar head and tail take up to 7 threads each).
  const int steps = (V + 7) / 8;
  const int threads = std::min(kCeMaxThreads, detail::RoundUp(steps, 32));
  const int64_t in_l2 =
      std::max<int64_t>(detail::CurrentDeviceLimits().sms, kL2RowBudget / (int64_t{V} * 2));
  auto launch = [&](auto kernel) {
    const int64_t blocks = std::min({N, detail::ResidentBlocks(kernel, threads, 0), in_l2});
    DYT_LAUNCH(kernel, static_cast<unsigned>(blocks), threads, 0, stream, logits, losses, targets,
               N, V, grad_scale);
  };
  if (aligned) {
    launch(CrossEntropyKernel<true, kBackward>);
  } else {
    launch(CrossEntropyKernel<false, kBackward>);
  }
  return LaunchStatus(fn);
}

}  // namespace

Status CrossEntropyForwardBackward(bf16* logits, float* losses, const int32_t* targets, int64_t N,
                                   int V, float grad_scale, cudaStream_t stream) {
  return Launch<true>("CrossEntropyForwardBackward", logits, losses, targets, N, V, grad_scale,
                      stream);
}

Status CrossEntropyForward(const bf16* logits, float* losses, const int32_t* targets, int64_t N,
                           int V, cudaStream_t stream) {
  // The forward-only kernel never writes the logits.
  return Launch<false>("CrossEntropyForward", const_cast<bf16*>(logits), losses, targets, N, V,
                       1.0f, stream);
}

}  // namespace dyt::cuda
