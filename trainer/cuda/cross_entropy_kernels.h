// Cross-entropy over the vocabulary on the GPU, fused with the softmax: the probabilities are
// never stored.
//
// Twin of dyt::cpu::CrossEntropyForwardBackward / CrossEntropyForward (trainer/cpu/kernels.h).
// One pass per row computes the running max and the sum of exponentials (online softmax) of
// the bf16 logits in fp32; a second pass overwrites the logits with
// dloss/dlogits = (softmax - onehot(target)) * grad_scale, rounded to bf16. The loss of row n,
// -log softmax(logits[n])[target[n]] = logsumexp - logit[target], goes to losses[n] (fp32).
// Rows are independent (no cross-row reduction), so results do not depend on the launch shape.
// `targets` is device memory; every target must be in [0, V) (the loader checks it). V may be
// any size (odd ones included). Enqueued on `stream`; INVALID_ARGUMENT for bad arguments,
// INTERNAL for a launch error.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

// logits [N, V] in, dlogits out (in place); losses [N].
Status CrossEntropyForwardBackward(bf16* logits, float* losses, const int32_t* targets, int64_t N,
                                   int V, float grad_scale, cudaStream_t stream);
// Forward only: losses [N]; the logits are untouched.
Status CrossEntropyForward(const bf16* logits, float* losses, const int32_t* targets, int64_t N,
                           int V, cudaStream_t stream);

}  // namespace dyt::cuda
