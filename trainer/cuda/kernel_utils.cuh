// Device helpers shared by the elementwise / row kernels (internal to trainer/cuda).
//
// Vector access: a thread handles kVec consecutive elements of a row. kVec = 8 is the fast
// path: 8 bf16 are one 16-byte load/store, 8 floats two. kVec = 1 is the fallback for rows
// whose width is not a multiple of 8 or pointers not 16-byte aligned. All math is fp32 in
// registers; values are rounded only when stored.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "trainer/cuda/kernel_launch.cuh"
#include "trainer/cuda/tanh_math.h"

namespace dyt::cuda::detail {

// ---- host-side launch geometry ------------------------------------------------------------

inline constexpr int kVecWidth = 8;
// Threads of a 2-D elementwise block (columns x rows of the tensor).
inline constexpr int kBlockThreads = 256;

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int RoundUp(int a, int b) { return static_cast<int>(CeilDiv(a, b) * b); }

inline bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The 2-D tiling of an [N, D] tensor used by the DyT kernels: block (bx, by) with bx threads
// across the row's vectors and by rows; grid (gx, gy), gy row-tiles striding over N.
struct TileShape {
  dim3 grid;
  dim3 block;
};

inline dim3 RowTileBlock(int D, int vec) {
  const int bx = std::min(RoundUp(D / vec, 32), kBlockThreads);
  return dim3(bx, std::max(1, kBlockThreads / bx));
}

// A persistent grid: at most `resident_blocks` blocks (what the GPU holds at once), so the
// work is one wave with no partly-filled last wave; fewer when N has fewer row tiles.
inline TileShape RowTileShape(int64_t N, int D, int vec, int rows_per_thread,
                              int64_t resident_blocks) {
  const dim3 block = RowTileBlock(D, vec);
  const int gx = static_cast<int>(CeilDiv(D / vec, block.x));
  const int64_t row_tiles = CeilDiv(std::max<int64_t>(N, 1), int64_t{block.y} * rows_per_thread);
  const int64_t gy =
      std::clamp<int64_t>(resident_blocks / gx, 1, std::min<int64_t>(row_tiles, 65535));
  return {dim3(gx, static_cast<unsigned>(gy)), block};
}

// ---- device-side vector access ------------------------------------------------------------

template <typename T>
__device__ __forceinline__ float ToFloat(T v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __bfloat162float(v);
  } else {
    return v;
  }
}

// The value `v` takes once stored as T (round to nearest even for bf16).
template <typename T>
__device__ __forceinline__ float RoundTo(float v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __bfloat162float(__float2bfloat16_rn(v));
  } else {
    return v;
  }
}

// Loads kVec activations read once (streaming: evict-first, so they do not push the
// parameters and partial sums out of L2).
template <int kVec, typename T>
__device__ __forceinline__ void LoadVec(const T* p, float (&v)[kVec]) {
  if constexpr (kVec == 1) {
    v[0] = ToFloat(p[0]);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    static_assert(kVec == 8, "bf16 vectors are 8 wide (16 bytes)");
    const uint4 u = __ldcs(reinterpret_cast<const uint4*>(p));
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(h[i]);
      v[2 * i] = f.x;
      v[2 * i + 1] = f.y;
    }
  } else {
    static_assert(std::is_same_v<T, float> && kVec % 4 == 0, "float vectors are 4k wide");
#pragma unroll
    for (int i = 0; i < kVec / 4; ++i) {
      const float4 f = __ldcs(reinterpret_cast<const float4*>(p) + i);
      v[4 * i] = f.x;
      v[4 * i + 1] = f.y;
      v[4 * i + 2] = f.z;
      v[4 * i + 3] = f.w;
    }
  }
}

// Loads kVec fp32 parameters (gamma, beta, weights), read by many rows: through the read-only
// cache, no streaming hint.
template <int kVec>
__device__ __forceinline__ void LoadParams(const float* p, float (&v)[kVec]) {
  if constexpr (kVec == 1) {
    v[0] = __ldg(p);
  } else {
#pragma unroll
    for (int i = 0; i < kVec / 4; ++i) {
      const float4 f = __ldg(reinterpret_cast<const float4*>(p) + i);
      v[4 * i] = f.x;
      v[4 * i + 1] = f.y;
      v[4 * i + 2] = f.z;
      v[4 * i + 3] = f.w;
    }
  }
}

template <int kVec, typename T>
__device__ __forceinline__ void StoreVec(T* p, const float (&v)[kVec]) {
  if constexpr (kVec == 1) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      p[0] = __float2bfloat16_rn(v[0]);
    } else {
      p[0] = v[0];
    }
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    static_assert(kVec == 8, "bf16 vectors are 8 wide (16 bytes)");
    uint4 u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = u;
  } else {
    static_assert(std::is_same_v<T, float> && kVec % 4 == 0, "float vectors are 4k wide");
#pragma unroll
    for (int i = 0; i < kVec / 4; ++i) {
      reinterpret_cast<float4*>(p)[i] =
          make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    }
  }
}

// Stores one value as T (round to nearest even for bf16).
template <typename T>
__device__ __forceinline__ void StoreOne(T* p, float v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    *p = __float2bfloat16_rn(v);
  } else {
    *p = v;
  }
}

// tanh in fp32: libdevice's tanhf (about 1 ulp) or the MUFU.TANH instruction (sm_75+,
// relative error about 2^-11, finer than bf16's 2^-9 rounding of the output).
template <bool kFast>
__device__ __forceinline__ float Tanh(float x) {
  if constexpr (kFast) {
#if defined(DYT_SIMT)
    return tanhf(x);  // the SIMT emulator (tests/cuda/simt) has no MUFU.TANH
#else
    float y;
    asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#endif
  } else {
#if defined(DYT_SIMT)
    // libdevice's tanhf is this formula (tanh_math.h); the SIMT emulator's host tanhf is glibc's,
    // which rounds differently (exact ex2 and rcp stand in for the MUFU approximations).
    return tanh_math::TanhExpRcp(
        x, [](float a) { return exp2f(a); }, [](float a) { return 1.0f / a; });
#else
    return tanhf(x);
#endif
  }
}

// tanh implementations of the tuned DyT kernels (TanhImpl in dyt_kernels.h, same numbering):
// 0 libdevice tanhf; 1 the same formula without its saturation test (tanh_math.h), two
// instructions fewer, identical results; 2 the hardware MUFU.TANH (what Tanh<true> is).
template <int kImpl>
__device__ __forceinline__ float TanhBy(float x) {
  if constexpr (kImpl == 1) {
    return tanh_math::TanhExpRcp(
        x,
        [](float a) {
#if defined(DYT_SIMT)
          return exp2f(a);  // the SIMT emulator's ex2 and rcp are exact
#else
          float r;
          asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(a));
          return r;
#endif
        },
        [](float a) {
#if defined(DYT_SIMT)
          return 1.0f / a;
#else
          float r;
          asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(a));
          return r;
#endif
        });
  } else {
    return Tanh<kImpl == 2>(x);
  }
}

// ---- raw 16-byte access with cache hints (the tuned DyT kernels) -------------------------
//
// The loads of a tile go into these raw registers first and are converted only when used, so
// a thread's loads are all in flight together (4 registers per 8 bf16, not 8 floats), and no
// conversion sits between two loads. kHint (CacheHint in dyt_kernels.h, same numbering):
//   0 ld.global.cs (streaming, evict-first), plain stores
//   1 ld.global.nc for data the kernel never writes (kReadOnly), else ld.global.ca
//   2 ld.global.L1::no_allocate.L2::256B (no L1 line, L2 prefetches 256-byte blocks)
//   3 as 0, with st.global.cs (streaming) stores
template <int kHint, bool kReadOnly>
__device__ __forceinline__ uint4 Load16(const void* p) {
  const uint4* q = static_cast<const uint4*>(p);
  if constexpr (kHint == 1) {
    if constexpr (kReadOnly) {
      return __ldg(q);
    } else {
      return __ldca(q);
    }
  } else if constexpr (kHint == 2) {
#if defined(DYT_SIMT)
    return *q;
#else
    uint4 v;
    asm("ld.global.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(q));
    return v;
#endif
  } else {
    return __ldcs(q);
  }
}

template <int kHint>
__device__ __forceinline__ void Store16(void* p, uint4 v) {
  if constexpr (kHint == 3) {
    __stcs(static_cast<uint4*>(p), v);
  } else {
    *static_cast<uint4*>(p) = v;
  }
}

// 8 consecutive elements of T as loaded: one 16-byte register quad for bf16, two for fp32.
template <typename T>
struct Raw8 {
  static constexpr int kQuads = sizeof(T) * 8 / 16;
  uint4 q[kQuads];
};

template <int kHint, bool kReadOnly, typename T>
__device__ __forceinline__ void LoadRaw8(const T* p, Raw8<T>& r) {
#pragma unroll
  for (int i = 0; i < Raw8<T>::kQuads; ++i) {
    r.q[i] = Load16<kHint, kReadOnly>(reinterpret_cast<const uint4*>(p) + i);
  }
}

template <typename T>
__device__ __forceinline__ void Unpack8(const Raw8<T>& r, float (&v)[8]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&r.q[0]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(h[i]);
      v[2 * i] = f.x;
      v[2 * i + 1] = f.y;
    }
  } else {
    static_assert(std::is_same_v<T, float>);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      v[4 * i] = __uint_as_float(r.q[i].x);
      v[4 * i + 1] = __uint_as_float(r.q[i].y);
      v[4 * i + 2] = __uint_as_float(r.q[i].z);
      v[4 * i + 3] = __uint_as_float(r.q[i].w);
    }
  }
}

// Stores 8 values as T (round to nearest even for bf16) with the store hint of kHint.
template <int kHint, typename T>
__device__ __forceinline__ void Store8(T* p, const float (&v)[8]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    uint4 u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    Store16<kHint>(p, u);
  } else {
    static_assert(std::is_same_v<T, float>);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      Store16<kHint>(reinterpret_cast<uint4*>(p) + i,
                     make_uint4(__float_as_uint(v[4 * i]), __float_as_uint(v[4 * i + 1]),
                                __float_as_uint(v[4 * i + 2]), __float_as_uint(v[4 * i + 3])));
    }
  }
}

// ---- run tables ------------------------------------------------------------------------------

// The last r in [0, count) with starts[r] <= i, for non-decreasing `starts` with starts[0] <= i:
// which of `count` consecutive runs (or ranges laid end to end) holds element i. An empty run,
// whose start equals the next one's, is never picked. Binary search.
__device__ __forceinline__ int RunOf(const int64_t* starts, int count, int64_t i) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= i) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// ---- deterministic reductions -------------------------------------------------------------

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the whole block (its size a multiple of 32), returned to every thread with the same
// bits: a fixed butterfly inside each warp, then every thread adds the warp sums in warp order.
// `smem` holds at least 32 floats. Contains two __syncthreads(), so every thread must call it.
__device__ __forceinline__ float BlockSum(float v, float* smem) {
  const int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int nwarps = (blockDim.x * blockDim.y * blockDim.z) / 32;
  v = WarpSum(v);
  if ((tid & 31) == 0) smem[tid >> 5] = v;
  __syncthreads();
  float s = 0.f;
  for (int w = 0; w < nwarps; ++w) s += smem[w];
  __syncthreads();
  return s;
}

// Second stage of every parameter-gradient reduction (defined in param_grads.cu):
//   dcol[c]  += sum over p < P  of parts_col[p * D + c]   (fixed order p = 0, 1, ...)
//   dcol2[c] += likewise over parts_col2 (skipped when dcol2 is null)
//   dscalar  += sum of the Ps partials parts_scalar[0..Ps) (skipped when dscalar is null)
// One launch on `stream`; deterministic (no atomics).
cudaError_t LaunchAccumulateParamGrads(float* dcol, const float* parts_col, float* dcol2,
                                       const float* parts_col2, int P, int D, float* dscalar,
                                       const float* parts_scalar, int Ps, cudaStream_t stream);

}  // namespace dyt::cuda::detail
