// CUDA kernels of Dynamic Tanh, fused with the residual add: y = gamma * tanh(alpha * x) + beta.
//
// Twins of dyt::cpu::DytForward / DytBackward (trainer/cpu/kernels.h); tests/cuda compares them.
//
// Conventions (shared with rmsnorm_kernels.h):
//   * Tensors are row-major [N, D] (N = batch * positions, D = channels), contiguous.
//   * Activations are bf16. The residual stream, and so the DyT input x, is bf16 or fp32
//     (one overload each): bf16 halves its traffic (llm.c and Megatron's default), fp32 keeps
//     small branch updates that bf16 would round away. All math is fp32 in registers.
//   * Parameters and their gradients are fp32 DEVICE pointers: alpha is ONE float (read on the
//     device, so an optimizer step on the GPU needs no host round trip), gamma and beta [D].
//     beta (and dbeta) may be null: DyT without bias (dyt_bias off).
//   * Backward functions OVERWRITE dx and ACCUMULATE (+=) into dalpha, dgamma, dbeta.
//   * The parameter gradients are reduced deterministically: each block writes partial sums to
//     `scratch`, and a second kernel adds them in a fixed order. No float atomics, so results
//     are bit-identical from run to run on the same GPU model (the grid is sized to the
//     device, so another model may round differently).
//   * Everything is enqueued on `stream`; nothing synchronizes. Launchers return
//     INVALID_ARGUMENT for bad arguments (before launching anything) and INTERNAL for launch
//     errors. Errors inside a kernel surface at the next synchronizing call.
//   * Fast path: D % 8 == 0 and every pointer 16-byte aligned (any cudaMalloc'd base is); it
//     moves 16 bytes per access. Otherwise a scalar path gives the same results, slower.
//   * TanhMode::kFast uses the hardware tanh (relative error ~2^-11, below bf16's 2^-9
//     output rounding); kAccurate uses tanhf. Forward and backward should use the same mode.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

enum class TanhMode { kAccurate, kFast };

// y = gamma * tanh(alpha * x) + beta. The first layer's DyT (no residual add before it).
Status DytForward(bf16* y, const bf16* x, const float* alpha, const float* gamma, const float* beta,
                  int64_t N, int D, cudaStream_t stream, TanhMode tanh_mode = TanhMode::kAccurate);
Status DytForward(bf16* y, const float* x, const float* alpha, const float* gamma,
                  const float* beta, int64_t N, int D, cudaStream_t stream,
                  TanhMode tanh_mode = TanhMode::kAccurate);

// r_out = r + d (the residual add, rounded to the residual's type), then
// y = gamma * tanh(alpha * r_out) + beta, in one pass over memory. y is computed from the
// ROUNDED r_out, the value the backward pass will read back as x. r_out may alias r (in-place
// residual update); y must not alias anything.
Status ResidualDytForward(bf16* r_out, bf16* y, const bf16* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode = TanhMode::kAccurate);
Status ResidualDytForward(float* r_out, bf16* y, const float* r, const bf16* d, const float* alpha,
                          const float* gamma, const float* beta, int64_t N, int D,
                          cudaStream_t stream, TanhMode tanh_mode = TanhMode::kAccurate);

// Bytes of device scratch DytBackward needs for an [N, D] input on the CURRENT device (any
// alignment, either x type, either tanh mode).
size_t DytBackwardScratchBytes(int64_t N, int D);

// With t = tanh(alpha * x) recomputed (no stored t):
//   dx = dr + dy * gamma * alpha * (1 - t^2)        (dr may be null: dx = the DyT term alone)
//   *dalpha += sum(dy * gamma * (1 - t^2) * x)
//   dgamma  += sum_rows(dy * t)
//   dbeta   += sum_rows(dy)                          (skipped when dbeta is null)
// dr is the gradient arriving through the residual stream; dx may alias dr (in place), never
// dy or x.
// `scratch` holds at least DytBackwardScratchBytes(N, D) bytes of device memory; it must not
// be in use by other work on other streams.
Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const bf16* x, const bf16* dr, const float* alpha, const float* gamma, int64_t N,
                   int D, void* scratch, size_t scratch_bytes, cudaStream_t stream,
                   TanhMode tanh_mode = TanhMode::kAccurate);
Status DytBackward(bf16* dx, float* dalpha, float* dgamma, float* dbeta, const bf16* dy,
                   const float* x, const bf16* dr, const float* alpha, const float* gamma,
                   int64_t N, int D, void* scratch, size_t scratch_bytes, cudaStream_t stream,
                   TanhMode tanh_mode = TanhMode::kAccurate);

// ---- tuning: the forward kernel's knobs, for benchmarks and tests ---------------------------
//
// The functions above run the DEFAULT configuration (DefaultDytForwardConfig). The knobs below
// pick another compiled-in variant of the same kernel, so one benchmark run can time them all
// (bench/gpu/dyt_layer_bench.cu --variants) and tests can check each against the CPU twin.
namespace tuning {

// How tanh is computed. kLibdevice and kExpRcp give bit-identical results (the same formula;
// kExpRcp drops tanhf's redundant saturation test, two instructions fewer per element);
// kHardware is TanhMode::kFast (MUFU.TANH, relative error ~2^-11).
enum class TanhImpl { kLibdevice = 0, kExpRcp = 1, kHardware = 2 };

// Cache hints of the activation accesses (kernel_utils.cuh has the instructions).
enum class CacheHint {
  kStreaming = 0,        // loads ld.global.cs (evict-first), plain stores
  kReadOnly = 1,         // loads ld.global.nc (ld.global.ca for r, which r_out may alias)
  kNoAllocate = 2,       // loads ld.global.L1::no_allocate.L2::256B
  kStreamingStores = 3,  // loads as kStreaming, stores st.global.cs
};

struct DytForwardConfig {
  // The kernel before 2026-12 (its per-row bounds checks kept one load per tensor in flight);
  // kept only to measure against. When true, only `tanh` (libdevice or hardware) applies.
  bool legacy = false;
  // Compile-time knobs: a combination must be compiled in (DytForwardConfigs()).
  int rows = 4;        // rows per thread whose loads are all issued before the first is used
  int min_blocks = 1;  // __launch_bounds__(256, min_blocks): caps registers at 64K / (256 * it)
  TanhImpl tanh = TanhImpl::kLibdevice;
  CacheHint hint = CacheHint::kStreaming;
  // Launch-time knobs, any value:
  int waves = 1;    // grid = waves x the blocks resident at once (persistent); 0: a block per tile
  int block_x = 0;  // threads across a row (a multiple of 32, <= 256; 0: auto); 256 per block
  int max_grid_y = 0;  // caps the grid's row-tile dimension (tests: many tiles per block); 0: none

  std::string Name() const;  // e.g. "r4.b3.lib.cs.w1.x0" (".g<max_grid_y>" when set)
  bool operator==(const DytForwardConfig& o) const;
};

// The configuration the public functions use for `mode`.
// `residual`: the default of ResidualDytForward (it differs only in launch shape, `waves`).
DytForwardConfig DefaultDytForwardConfig(TanhMode mode, bool residual = false);

// Every compiled-in combination of the compile-time knobs of the plain (residual false) or
// the residual-add kernel: the two defaults (accurate, fast; with their launch knobs), the two
// legacy kernels, then the sweep (waves = 1, block_x = 0). The tuned entry points accept each
// with any waves / block_x.
const std::vector<DytForwardConfig>& DytForwardConfigs(bool residual);

// DytForward / ResidualDytForward (bf16, beta non-null) with configuration `cfg`. A config
// that is not compiled in returns INVALID_ARGUMENT; a shape or alignment the vector path
// cannot take (D % 8 != 0, a pointer not 16-byte aligned) runs the default scalar path.
Status DytForwardTuned(const DytForwardConfig& cfg, bf16* y, const bf16* x, const float* alpha,
                       const float* gamma, const float* beta, int64_t N, int D,
                       cudaStream_t stream);
Status ResidualDytForwardTuned(const DytForwardConfig& cfg, bf16* r_out, bf16* y, const bf16* r,
                               const bf16* d, const float* alpha, const float* gamma,
                               const float* beta, int64_t N, int D, cudaStream_t stream);

// Registers per thread and the blocks of 256 threads one SM holds, of cfg's vector-path kernel
// (the occupancy calculator on the current device); false if not compiled in or no GPU.
bool DytForwardKernelInfo(const DytForwardConfig& cfg, bool residual, int* registers,
                          int* blocks_per_sm);

// The backward kernel's knobs, the same way (legacy: the kernel before 2026-12, whose per-row
// bounds checks kept one row's three loads in flight at a time).
struct DytBackwardConfig {
  bool legacy = false;
  int rows = 2;        // rows per thread whose loads are all issued before the first is used
  int min_blocks = 1;  // __launch_bounds__(256, min_blocks)
  TanhImpl tanh = TanhImpl::kLibdevice;

  std::string Name() const;  // e.g. "r2.b1.lib"
  bool operator==(const DytBackwardConfig& o) const;
};

DytBackwardConfig DefaultDytBackwardConfig(TanhMode mode);

// The defaults (accurate, fast), the two legacy kernels, then the sweep (bf16 x only).
const std::vector<DytBackwardConfig>& DytBackwardConfigs();

// DytBackward (bf16 x) with configuration `cfg`; scratch as for DytBackward (its size covers
// every variant). Not compiled in: INVALID_ARGUMENT.
Status DytBackwardTuned(const DytBackwardConfig& cfg, bf16* dx, float* dalpha, float* dgamma,
                        float* dbeta, const bf16* dy, const bf16* x, const bf16* dr,
                        const float* alpha, const float* gamma, int64_t N, int D, void* scratch,
                        size_t scratch_bytes, cudaStream_t stream);

// Registers and blocks of 256 threads per SM of cfg's vector-path kernel (with dr).
bool DytBackwardKernelInfo(const DytBackwardConfig& cfg, int* registers, int* blocks_per_sm);

// y[i] = tanh(x[i]) by implementation `impl` (the kernels' device function), n elements of
// device memory: lets tests measure each implementation's error on the hardware.
Status TanhForTest(TanhImpl impl, float* y, const float* x, int64_t n, cudaStream_t stream);

}  // namespace tuning

}  // namespace dyt::cuda
