// Building blocks of the flash-attention kernels (internal to trainer/cuda: attention_forward.cu
// and attention_backward.cu): tile geometry, cp.async tile loads, ldmatrix fragment loads,
// the bf16 tensor-core product, and the launchers' argument checks.
//
// Fragment layouts (PTX ISA "Matrix Fragments for mma.m16n8k16 with floating point type" and
// "ldmatrix") and the lane offsets that follow from them: attention_fragments.h, which
// tests/cuda/attention_fragments_test.cc checks on the CPU against an emulated ldmatrix / mma.
// The C -> A identity is what lets P (and dS) feed the next product straight from the
// accumulators of the previous one, with no trip through shared memory.
//
// Shared memory tiles are row-major with kPad = 8 bf16 (16 bytes) of padding per row: a row is
// (hd + 8) * 2 = 144 or 272 bytes, 16 bytes more than a multiple of 128, so the 8 row addresses
// of one ldmatrix matrix (16 bytes each) fall in 8 distinct 16-byte bank groups: no conflicts.
// Every row start stays 16-byte aligned (cp.async and uint4 access).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "common/status.h"
#include "trainer/cuda/attention_fragments.h"
#include "trainer/cuda/attention_kernels.h"
#include "trainer/cuda/kernel_utils.cuh"

namespace dyt::cuda::attn {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = kWarps * 32;
// Rows a thread block owns (query rows of the forward and of the dq pass, kv rows of the dk/dv
// pass): 16 per warp, one m16 tile each.
inline constexpr int kBlockRows = kWarps * 16;
inline constexpr int kPad = 8;
inline constexpr float kLog2e = 1.4426950408889634f;

template <int kHd>
inline constexpr int kLds = kHd + kPad;  // shared-memory row stride (elements)

// Bytes of a [rows][kHd + kPad] bf16 shared tile.
template <int kHd>
constexpr int TileBytes(int rows) {
  return rows * kLds<kHd> * 2;
}

// ---- device primitives ---------------------------------------------------------------------

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if defined(DYT_SIMT)
// The SIMT emulator's versions (tests/cuda/simt/simt.h); the PTX below is the real thing.
__device__ __forceinline__ void CpAsync16(uint32_t dst, const void* src, bool valid) {
  simt::CpAsync(dst, src, 16, valid);
}
__device__ __forceinline__ void CpAsync4(uint32_t dst, const void* src, bool valid) {
  simt::CpAsync(dst, src, 4, valid);
}
__device__ __forceinline__ void CpAsyncCommit() { simt::CpAsyncCommit(); }
__device__ __forceinline__ int LoadAcquire(const int* p) {
  return std::atomic_ref<int>(*const_cast<int*>(p)).load(std::memory_order_acquire);
}
__device__ __forceinline__ void SpinPause() { simt::SpinPause(); }
template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  simt::CpAsyncWait(kPending);
}
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], uint32_t addr) {
  simt::LdMatrixX4(r, addr, /*trans=*/false);
}
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], uint32_t addr) {
  simt::LdMatrixX4(r, addr, /*trans=*/true);
}
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  simt::MmaM16N8K16(d, a, b0, b1);
}
#else
// 16 bytes global -> shared, asynchronously (L2 only). valid = false writes 16 zero bytes and
// reads nothing (src-size 0); src must still be a valid address, callers pass the tile base.
__device__ __forceinline__ void CpAsync16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}

// 4 bytes global -> shared (zero-filled when !valid).
__device__ __forceinline__ void CpAsync4(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 4 : 0)
               : "memory");
}

__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// A load of global *p with acquire semantics at GPU scope (it and what follows it in this
// thread see every write released before the value it reads).
__device__ __forceinline__ int LoadAcquire(const int* p) {
  int v;
  asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// The back-off of a spin-wait.
__device__ __forceinline__ void SpinPause() { __nanosleep(64); }

// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

// d += A B over one m16n8k16 tile (bf16 in, fp32 accumulate).
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

#endif  // DYT_SIMT

// Waits (one thread) until *counter == value; the caller then __syncthreads() so the whole
// block proceeds. Paired with a __threadfence() by every writer and an atomicAdd(counter, 1)
// by one thread of the writing block after its barrier. On a GPU a wait past 2^24 back-offs
// (seconds; a legitimate wait is one step of another block, microseconds) traps, so a
// dispatch-order assumption that fails ends the kernel with an error instead of hanging it.
__device__ __forceinline__ void WaitForCount(const int* counter, int value) {
#if defined(DYT_SIMT)
  while (LoadAcquire(counter) != value) SpinPause();  // the emulator times out by itself
#else
  for (unsigned spins = 0; LoadAcquire(counter) != value; ++spins) {
    if (spins == (1u << 24)) __trap();
    SpinPause();
  }
#endif
}

// RoPE's backward (rope_kernels.h) on one interleaved pair, cos c and sin s of its angle: the
// pair turned by -angle exactly as dyt::cpu::RopeBackward does (x0' = x0 c - x1 (-s),
// x1' = x0 (-s) + x1 c); RopeBackward8 on 8 consecutive elements (4 pairs) of a row at
// sequence position pos whose first element is column col of its head.
__device__ __forceinline__ void RopeBackwardPair(float& x0, float& x1, float c, float s) {
  const float si = -s, y0 = x0 * c - x1 * si, y1 = x0 * si + x1 * c;
  x0 = y0;
  x1 = y1;
}
template <int kHd>
__device__ __forceinline__ void RopeBackward8(float (&v)[8], RopeTables rope, int pos, int col) {
  const int at = pos * (kHd / 2) + col / 2;
  const float4 c = __ldg(reinterpret_cast<const float4*>(rope.cos + at));
  const float4 s = __ldg(reinterpret_cast<const float4*>(rope.sin + at));
  RopeBackwardPair(v[0], v[1], c.x, s.x);
  RopeBackwardPair(v[2], v[3], c.y, s.y);
  RopeBackwardPair(v[4], v[5], c.z, s.z);
  RopeBackwardPair(v[6], v[7], c.w, s.w);
}

// Two floats as a bf16 pair (round to nearest even), lo in the low half (the lower column).
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t u;
  memcpy(&u, &h, sizeof(u));
  return u;
}

// The A fragment of the 16 x 16 chunk made of accumulator tiles c0 (columns 0..7) and c1
// (columns 8..15): the C -> A identity above.
__device__ __forceinline__ void AccToA(uint32_t (&a)[4], const float (&c0)[4],
                                       const float (&c1)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const float(&c)[4] = AccTile(r) == 0 ? c0 : c1;
    a[r] = PackBf16(c[AccElem(r)], c[AccElem(r) + 1]);
  }
}

// acc [16, kN] += P [16, kK] @ B, on one warp: P is the warp's fp32 accumulator tiles (as A
// fragments, AccToA), B the [kK, kN] bf16 tile in shared memory at `b` (row stride kLd), read
// transposed by ldmatrix.trans. Every P x smem product of the kernels (O += P V, dV += P^T dO,
// dK += dS^T Q, dQ += dS K).
template <int kK, int kN, int kLd>
__device__ __forceinline__ void MmaAccSmemTrans(float (&acc)[kN / 8][4],
                                                const float (&p)[kK / 8][4], const bf16* b,
                                                int lane) {
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    uint32_t pa[4];
    AccToA(pa, p[2 * kk], p[2 * kk + 1]);
#pragma unroll
    for (int dp = 0; dp < kN / 16; ++dp) {
      uint32_t fb[4];
      LdMatrixX4Trans(fb, SmemAddr(b + LdmOffsetBTrans(lane, kk * 16, dp * 16, kLd)));
      Mma(acc[2 * dp], pa, fb[0], fb[1]);
      Mma(acc[2 * dp + 1], pa, fb[2], fb[3]);
    }
  }
}

// Starts the copy of a [kRows, kHd] bf16 tile (row i at g + i * ld) into shared s (row stride
// kLds), rows >= valid zero-filled and not read. All kThreads threads call it; the caller
// commits the group.
template <int kRows, int kHd>
__device__ __forceinline__ void LoadTileAsync(bf16* s, const bf16* g, int64_t ld, int valid,
                                              int tid) {
  constexpr int kChunks = kHd / 8;  // 16-byte chunks per row
  constexpr int kTotal = kRows * kChunks;
  static_assert(kTotal % kThreads == 0, "tile chunks must split evenly over the block");
#pragma unroll
  for (int i = 0; i < kTotal / kThreads; ++i) {
    const int c = tid + i * kThreads;
    const int r = c / kChunks;
    const int col = (c % kChunks) * 8;
    const bool ok = r < valid;
    const bf16* src = ok ? g + static_cast<int64_t>(r) * ld + col : g;
    CpAsync16(SmemAddr(s + r * kLds<kHd> + col), src, ok);
  }
}

// Starts the copy of kRows consecutive floats g[0 .. kRows) into s, entries >= valid zeroed.
template <int kRows>
__device__ __forceinline__ void LoadRowValuesAsync(float* s, const float* g, int valid, int tid) {
  static_assert(kRows <= kThreads, "one float per thread");
  if (tid < kRows) {
    const bool ok = tid < valid;
    CpAsync4(SmemAddr(s + tid), ok ? g + tid : g, ok);
  }
}

// Writes a warp's 16 x kHd fp32 accumulator (n-tiles acc[kHd / 8]) times `mul` as bf16 into
// the warp's 16 rows of shared s (row stride kLds). Conflict-free: a row is 4 banks more than
// a multiple of 32, so lanes (g, t) hit banks 4g + t + const.
template <int kHd>
__device__ __forceinline__ void AccToSmem(bf16* s, const float (&acc)[kHd / 8][4], float mul0,
                                          float mul1, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) {
    const int col = n * 8 + 2 * t;
    *reinterpret_cast<uint32_t*>(s + g * kLds<kHd> + col) =
        PackBf16(acc[n][0] * mul0, acc[n][1] * mul0);
    *reinterpret_cast<uint32_t*>(s + (g + 8) * kLds<kHd> + col) =
        PackBf16(acc[n][2] * mul1, acc[n][3] * mul1);
  }
}

// Writes a warp's 16 x kHd fp32 accumulator to global rows dst + i * ld (i < valid) as bf16 of
// mul * RoPE's backward (rows at sequence positions row0 + i), through `stage`: the warp's own
// 16 x kLds floats of shared memory (16-byte aligned), so each lane then handles 8-element
// chunks (one 16-byte store, 16-byte table loads) with nothing but the chunk in registers. The
// caller makes sure no other warp uses `stage`.
template <int kHd>
__device__ __forceinline__ void StoreAccRopeBackward(bf16* dst, int64_t ld, float* stage,
                                                     const float (&acc)[kHd / 8][4], float mul,
                                                     RopeTables rope, int row0, int valid,
                                                     int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) {
    const int col = n * 8 + 2 * t;
    *reinterpret_cast<float2*>(stage + g * kLds<kHd> + col) = make_float2(acc[n][0], acc[n][1]);
    *reinterpret_cast<float2*>(stage + (g + 8) * kLds<kHd> + col) =
        make_float2(acc[n][2], acc[n][3]);
  }
  __syncwarp();
  constexpr int kChunks = kHd / 8;
#pragma unroll
  for (int i = 0; i < 16 * kChunks / 32; ++i) {
    const int c = lane + i * 32;
    const int r = c / kChunks, col = (c % kChunks) * 8;
    if (r >= valid) continue;
    const float4* src = reinterpret_cast<const float4*>(stage + r * kLds<kHd> + col);
    const float4 a = src[0], b = src[1];
    float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    RopeBackward8<kHd>(v, rope, row0 + r, col);
    uint4 out;
    out.x = PackBf16(v[0] * mul, v[1] * mul);
    out.y = PackBf16(v[2] * mul, v[3] * mul);
    out.z = PackBf16(v[4] * mul, v[5] * mul);
    out.w = PackBf16(v[6] * mul, v[7] * mul);
    *reinterpret_cast<uint4*>(dst + static_cast<int64_t>(r) * ld + col) = out;
  }
}

// Copies a warp's 16 shared rows (row stride kLds) to global rows dst + i * ld for i < valid,
// 16 bytes per lane per step (a row is kHd / 8 chunks). Call after __syncwarp().
template <int kHd>
__device__ __forceinline__ void StoreWarpRows(bf16* dst, int64_t ld, const bf16* s, int valid,
                                              int lane) {
  constexpr int kChunks = kHd / 8;
  static_assert((16 * kChunks) % 32 == 0, "rows split evenly over the warp");
#pragma unroll
  for (int i = 0; i < 16 * kChunks / 32; ++i) {
    const int c = lane + i * 32;
    const int r = c / kChunks;
    const int col = (c % kChunks) * 8;
    if (r < valid) {
      *reinterpret_cast<uint4*>(dst + static_cast<int64_t>(r) * ld + col) =
          *reinterpret_cast<const uint4*>(s + r * kLds<kHd> + col);
    }
  }
}

// ---- host-side argument checks --------------------------------------------------------------

// The shape rules of attention_kernels.h; `fn` names the function in the message.
inline Status CheckAttentionShape(const char* fn, const AttentionShape& s) {
  const std::string f(fn);
  if (s.B < 1) return InvalidArgument(f + ": B=" + std::to_string(s.B) + " must be >= 1");
  if (s.T < 1) return InvalidArgument(f + ": T=" + std::to_string(s.T) + " must be >= 1");
  if (s.n_heads < 1 || s.n_kv_heads < 1 || s.n_heads % s.n_kv_heads != 0) {
    return InvalidArgument(
        f + ": n_heads=" + std::to_string(s.n_heads) +
        " must be a positive multiple of n_kv_heads=" + std::to_string(s.n_kv_heads));
  }
  if (s.head_dim != 64 && s.head_dim != 128) {
    return InvalidArgument(f + ": head_dim=" + std::to_string(s.head_dim) + " must be 64 or 128");
  }
  if (s.n_heads > 65535 || s.B > 65535) {
    return InvalidArgument(f + ": n_heads and B must be <= 65535 (grid dimensions)");
  }
  return Status::Ok();
}

// A row stride: a multiple of 8 elements and at least the row's width.
inline Status CheckStride(const char* fn, const char* name, int64_t ld, int64_t width) {
  if (ld < width || ld % 8 != 0) {
    return InvalidArgument(std::string(fn) + ": " + name + "=" + std::to_string(ld) +
                           " must be a multiple of 8 and >= " + std::to_string(width));
  }
  return Status::Ok();
}

// Not null and 16-byte aligned.
inline Status CheckPointer(const char* fn, const char* name, const void* p) {
  if (p == nullptr) return InvalidArgument(std::string(fn) + ": " + name + " is null");
  if (!detail::Aligned16(p)) {
    return InvalidArgument(std::string(fn) + ": " + name + " must be 16-byte aligned");
  }
  return Status::Ok();
}

}  // namespace dyt::cuda::attn
