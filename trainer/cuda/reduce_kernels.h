// Deterministic reductions on the GPU: the sum of a float array and the sum of its squares
// (the global gradient norm), in fp64, each block summing a fixed slice and one block adding
// the block partials in order. No atomics: the same input on the same GPU model gives the same
// bits from run to run.
//
// Twin of dyt::GradNorm (trainer/optim/adamw.h), which sums in double too.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

// Device scratch the reductions below need for n elements: one double per block, at most 1024
// blocks (8 KB), 0 for n == 0; depends only on n, never on the device. The scratch must be
// 8-byte aligned (cudaMalloc'd memory is). INVALID_ARGUMENT for n < 0, null pointers or a
// scratch that is too small.
size_t ReduceScratchBytes(int64_t n);

// *out = sum_i x[i]  (out: one device double). n == 0 gives 0.
Status SumDevice(double* out, const float* x, int64_t n, void* scratch, size_t scratch_bytes,
                 cudaStream_t stream);
// *out = sum_i x[i]^2  (out: one device double). n == 0 gives 0.
Status SumSquaresDevice(double* out, const float* x, int64_t n, void* scratch, size_t scratch_bytes,
                        cudaStream_t stream);

}  // namespace dyt::cuda
