// AdamWStepScalars (adamw_kernels.h): host code, kept out of the .cu file so that every
// host-side user (and the host emulation of tests/cuda/emu) compiles it with the C++ compiler.
#include <cmath>
#include <cstdint>

#include "trainer/cuda/adamw_kernels.h"

namespace dyt::cuda {

AdamWScalars AdamWStepScalars(float lr, float beta1, float beta2, float eps, float weight_decay,
                              bool decays, int64_t t, float grad_scale) {
  // Exactly the float/double operations of dyt::AdamW::Step (trainer/optim/adamw.cc).
  const float bc1 = 1.0f - float(std::pow(double(beta1), double(t)));
  const float bc2 = 1.0f - float(std::pow(double(beta2), double(t)));
  AdamWScalars s;
  s.beta1 = beta1;
  s.beta2 = beta2;
  s.eps = eps;
  s.decay = decays ? 1.0f - lr * weight_decay : 1.0f;
  s.step_size = lr / bc1;
  s.bc2_sqrt = std::sqrt(bc2);
  s.grad_scale = grad_scale;
  return s;
}

}  // namespace dyt::cuda
