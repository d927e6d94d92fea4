// The device side of the SIMT emulator (tests/cuda/simt/README.md): what trainer/cuda's kernel
// sources need in order to compile as host C++ and run, thread by thread, on the CPU.
//
// It is force-included (-include) ahead of every trainer/cuda/*.cu file built for the
// emulator, and defines DYT_SIMT, which switches the few places in those sources that cannot
// be host C++ (the <<<>>> launch, `extern __shared__`, inline PTX) to the functions below.
//
// Model: a launch runs its blocks one after another on the launching host thread (with
// DYT_SIMT_BLOCKS=n > 1, on n host threads at once, each taking the next block in index order
// as a GPU dispatches them, so blocks that wait on each other through global memory really do);
// the threads of a block are fibers of that host thread, each running until it reaches a barrier
// (__syncthreads) or a warp-wide operation (shuffle, __syncwarp, ldmatrix, mma), where it
// waits for the threads that operation involves. So:
//   - `__shared__` variables are `static thread_local`: one copy per host thread, shared by the
//     block's fibers (blocks run one at a time); dynamic shared memory is a per-launch buffer,
//     filled with 0xFF bytes (NaN) at the start of every block, so a read of shared memory the
//     block never wrote shows in the results;
//   - warp-wide operations compute what the PTX ISA specifies for the whole warp at once (the
//     last lane to arrive computes every lane's result), so fragment layouts are checked;
//   - cp.async copies land when cp.async.wait_group retires their group (DYT_SIMT_CP_ASYNC=
//     early: when issued), so a read that does not wait, or a copy that overwrites data still
//     being read, changes results;
//   - DYT_SIMT_ORDER=low-first (high-first) always resumes the lowest (highest) runnable
//     thread, so one warp runs ahead of the others until a __syncthreads stops it: a missing
//     barrier changes results (the default, round-robin, advances warps together);
//   - a barrier some threads never reach, lanes of a warp at different warp operations, or
//     shared-memory fragment accesses out of bounds stop the program with a message naming
//     the kernel, block and thread.
#pragma once

#define DYT_SIMT 1

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <utility>

// ---- CUDA C++ keywords and built-in variables ------------------------------------------------

#undef __shared__
#define __shared__ static thread_local
#define __launch_bounds__(...)

extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;

namespace dyt::simt {

// ---- the launch ----------------------------------------------------------------------------

struct LaunchConfig {
  const char* name;  // the kernel expression, for messages
  const void* func;  // the kernel, for its attributes (cudaFuncSetAttribute)
  dim3 grid;
  dim3 block;
  size_t smem;
};

// Runs `body(ctx)` as every thread of every block of `cfg`; a bad configuration (what a GPU
// would refuse) runs nothing and becomes the error cudaGetLastError() returns next.
void RunGrid(const LaunchConfig& cfg, void (*body)(void*), void* ctx);

template <typename... Params>
class Launcher {
 public:
  Launcher(void (*kernel)(Params...), const LaunchConfig& cfg) : kernel_(kernel), cfg_(cfg) {}

  // Converts the arguments to the kernel's parameter types (as a launch does) and runs it.
  template <typename... Args>
  void operator()(Args&&... args) const {
    struct Call {
      void (*kernel)(Params...);
      std::tuple<Params...> params;
    } call{kernel_, std::tuple<Params...>(std::forward<Args>(args)...)};
    RunGrid(
        cfg_,
        [](void* c) { std::apply(static_cast<Call*>(c)->kernel, static_cast<Call*>(c)->params); },
        &call);
  }

 private:
  void (*kernel_)(Params...);
  LaunchConfig cfg_;
};

template <typename... Params>
Launcher<Params...> Launch(void (*kernel)(Params...), const char* name, dim3 grid, dim3 block,
                           size_t smem, cudaStream_t /*stream: everything runs in order*/) {
  return Launcher<Params...>(
      kernel, LaunchConfig{name, reinterpret_cast<const void*>(kernel), grid, block, smem});
}

// The current block's dynamic shared memory (`extern __shared__`), 128-byte aligned.
void* DynamicSharedMemory();

// ---- synchronisation and warp-wide operations ----------------------------------------------

void SyncThreads();
void SyncWarp(unsigned mask);
// The value of lane (this lane ^ lane_mask), as bytes (at most 8).
void ShuffleXor(unsigned mask, void* value, size_t bytes, int lane_mask, int width);

// Shared-memory "addresses" are offsets into the block's dynamic shared memory.
uint32_t SharedAddress(const void* p);
void LdMatrixX4(uint32_t (&r)[4], uint32_t addr, bool trans);
// d += A B over one m16n8k16 tile (bf16 in, fp32 accumulate), fragments as in the PTX ISA.
void MmaM16N8K16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

// A spin-wait on global memory did not see its value yet: yields the host thread (blocks on
// other host threads make progress). Stops the program, naming the kernel and block, when
// blocks run one at a time (the awaited block comes later in index order: on a GPU it need not
// be resident, a deadlock) or after 60 s (DYT_SIMT_BLOCKS > 1).
void SpinPause();

// cp.async: `bytes` from global src to shared dst (zeros when !valid), landing when its group
// is retired by CpAsyncWait (or at once, with DYT_SIMT_CP_ASYNC=early).
void CpAsync(uint32_t dst, const void* src, size_t bytes, bool valid);
void CpAsyncCommit();
void CpAsyncWait(int pending);

}  // namespace dyt::simt

// ---- the runtime's kernel-pointer overloads (nvcc-only in cuda_runtime.h) --------------------

template <typename... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
template <typename... P>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, void (*kernel)(P...)) {
  return cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(kernel));
}
template <typename... P>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void (*kernel)(P...),
                                                          int threads, size_t smem) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      blocks, reinterpret_cast<const void*>(kernel), threads, smem);
}

// ---- CUDA device functions, on the host ------------------------------------------------------

inline void __syncthreads() { dyt::simt::SyncThreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { dyt::simt::SyncWarp(mask); }

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  dyt::simt::ShuffleXor(mask, &value, sizeof(T), lane_mask, width);
  return value;
}

// Cache-hinted loads and stores are plain accesses.
template <typename T>
T __ldg(const T* p) {
  return *p;
}
template <typename T>
T __ldcs(const T* p) {
  return *p;
}
template <typename T>
T __ldca(const T* p) {
  return *p;
}
template <typename T>
T __ldcg(const T* p) {
  return *p;
}
template <typename T>
void __stcs(T* p, T v) {
  *p = v;
}
template <typename T>
void __stcg(T* p, T v) {
  *p = v;
}

// Atomics and fences: blocks may run on several host threads (DYT_SIMT_BLOCKS), so these are
// the host's atomics. float2 is two float atomics (the GPU's is one 8-byte operation; no kernel
// depends on the pair landing together).
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }
inline float2 atomicAdd(float2* p, float2 v) {
  return make_float2(atomicAdd(&p->x, v.x), atomicAdd(&p->y, v.y));
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

inline size_t __cvta_generic_to_shared(const void* p) { return dyt::simt::SharedAddress(p); }

inline float __expf(float x) { return expf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
