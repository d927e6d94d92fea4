// AdamW on the GPU over a contiguous range of the flat fp32 parameter buffer, with the bf16
// copy the matrix products read written in the same pass.
//
// Twin of dyt::AdamW::Step (trainer/optim/adamw.cc): the same operations in the same order,
// per element (torch.optim.AdamW, single-tensor path):
//   g  = grads[i] * grad_scale                  (grad_scale: the clip coefficient, or 1)
//   p *= decay                                  (decay = 1 - lr * weight_decay, or 1)
//   m  = m * beta1 + g * (1 - beta1)
//   v  = v * beta2 + (1 - beta2) * g * g
//   p += -step_size * (m / (sqrt(v) / bc2_sqrt + eps))
//   params_bf16[i] = bf16(p)                    (skipped when params_bf16 is null)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) computed by the caller
// (AdamWStepScalars) from the step count t. Each product and sum is rounded like the CPU code
// (no fused multiply-add), so results match the CPU to the last bit or two.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace dyt::cuda {

using bf16 = __nv_bfloat16;

struct AdamWScalars {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float decay = 1.0f;      // 1 - lr * weight_decay for decayed tensors, 1 otherwise
  float step_size = 0.0f;  // lr / bias_correction1
  float bc2_sqrt = 1.0f;   // sqrt(bias_correction2)
  float grad_scale = 1.0f;
};

// The scalars of step t (1-based) as dyt::AdamW::Step computes them.
AdamWScalars AdamWStepScalars(float lr, float beta1, float beta2, float eps, float weight_decay,
                              bool decays, int64_t t, float grad_scale);

// Weight decay element by element, for one launch over a range whose tensors decay or not
// (matrices do, norm parameters do not): run r is [bounds[r], bounds[r + 1]) of the range and
// is multiplied by s.decay when decays[r] != 0, left alone (by 1) otherwise. Device arrays,
// bounds[0] = 0, bounds[count] = n, non-decreasing; at most kMaxRuns runs (the table is staged
// in shared memory).
struct AdamWDecayRuns {
  static constexpr int kMaxRuns = 4096;
  const int64_t* bounds = nullptr;  // [count + 1]
  const uint8_t* decays = nullptr;  // [count]
  int count = 0;
};

// One update of n elements; every pointer is device memory indexed from the range's start.
// Without `runs` every element decays by s.decay; with it, by run (the table is not read on
// the host: a bad one gives wrong decays, not an error).
Status AdamWUpdate(float* params, bf16* params_bf16, const float* grads, float* m, float* v,
                   int64_t n, const AdamWScalars& s, cudaStream_t stream,
                   const AdamWDecayRuns* runs = nullptr);

}  // namespace dyt::cuda
