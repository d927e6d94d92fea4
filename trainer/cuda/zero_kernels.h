// Zeroing many disjoint ranges of one fp32 buffer in one launch: the parts of the gradient
// buffer that a micro-batch's weight-gradient products do not overwrite (llama_cuda.cc, the
// gradients' overwrite mode), which are many small ranges (each layer's norm parameters) and
// one or two large ones (an untied embedding table, the padding).
//
// The ranges come as two device arrays of a table built on the host:
//   begin[count]       the first element of range i (an offset into `base`)
//   prefix[count + 1]  prefix[0] = 0, prefix[i + 1] = prefix[i] + length of range i, so
//                      prefix[count] = total, the number of elements zeroed
// Ranges may be empty and must not overlap (overlap is not an error, only wasted work). One
// thread per element of the concatenated ranges finds its range by binary search on `prefix`.
// Enqueued on `stream`; INVALID_ARGUMENT for bad arguments, INTERNAL for a launch error.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

Status ZeroRanges(float* base, const int64_t* begin, const int64_t* prefix, int count,
                  int64_t total, cudaStream_t stream);

}  // namespace dyt::cuda
