// AdamW over the flat parameter buffer, with PyTorch's exact update order
// (torch.optim.AdamW, single-tensor path), plus global-norm gradient clipping
// (torch.nn.utils.clip_grad_norm_ semantics).
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/model/param_layout.h"

namespace dyt {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  // The paper decays every parameter; when true, DyT alpha/gamma/beta, RMSNorm weights and
  // the embedding scale are excluded from weight decay.
  bool no_decay_norms_and_scales = false;
};

// Whether AdamW decays a tensor of `role` under `config` (every backend's rule).
bool DecaysWeight(const AdamWConfig& config, ParamRole role);

// The optimizer owns the moments of the flat-buffer range [begin, end): the whole model, or
// with ZeRO-1 one rank's shard of it.
class AdamW {
 public:
  AdamW(const ParamLayout& layout, const AdamWConfig& config);
  AdamW(const ParamLayout& layout, const AdamWConfig& config, int64_t begin, int64_t end);

  // One update of params[begin, end) from grads[begin, end) at learning rate `lr` (both
  // pointers index the full flat buffer); increments step().
  void Step(float* params, const float* grads, float lr);
  int64_t begin() const { return begin_; }
  int64_t end() const { return end_; }

  int64_t step() const { return step_; }
  void set_step(int64_t s) { step_ = s; }
  // Moments of [begin, end), indexed from begin.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  const AdamWConfig& config() const { return config_; }
  // Whether the tensor at `index` in layout.tensors() gets weight decay.
  bool Decays(size_t index) const { return decay_[index]; }

 private:
  const ParamLayout& layout_;
  AdamWConfig config_;
  std::vector<float> m_, v_;
  std::vector<bool> decay_;
  int64_t begin_, end_;
  int64_t step_ = 0;
};

// L2 norm of the whole gradient buffer (computed in double, fixed order).
double GradNorm(const float* grads, int64_t n);
// Scales grads so the global norm is at most max_norm: coef = max_norm / (norm + 1e-6),
// applied when coef < 1 (as clip_grad_norm_). Returns the norm before clipping.
double ClipGradNorm(float* grads, int64_t n, float max_norm);

}  // namespace dyt
