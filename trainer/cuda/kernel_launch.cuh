// The two CUDA-only spellings of the kernel sources, as macros, so the same sources also build
// as host C++ for the SIMT emulator (tests/cuda/simt/README.md), which defines DYT_SIMT:
//
//   DYT_LAUNCH(kernel, grid, block, smem, stream, args...)
//       is kernel<<<grid, block, smem, stream>>>(args...)
//   DYT_DYNAMIC_SMEM(T, name);
//       is extern __shared__ __align__(16) T name[];
//
// `kernel` must be one macro argument: a kernel template with several arguments goes through a
// local pointer (auto* kernel = K<a, b>;). DYT_DYNAMIC_SMEM's name is 16-byte aligned and used
// as a T* (on the emulator it is one).
#pragma once

#if defined(DYT_SIMT)
#define DYT_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::dyt::simt::Launch(kernel, #kernel, grid, block, smem, stream)(__VA_ARGS__)
#define DYT_DYNAMIC_SMEM(T, name) \
  T* const name = static_cast<T*>(::dyt::simt::DynamicSharedMemory())
#else
#define DYT_LAUNCH(kernel, grid, block, smem, stream, ...) \
  kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define DYT_DYNAMIC_SMEM(T, name) extern __shared__ __align__(16) T name[]
#endif
