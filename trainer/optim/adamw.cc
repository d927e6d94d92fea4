#include "trainer/optim/adamw.h"

#include <algorithm>
#include <cmath>

namespace dyt {

bool DecaysWeight(const AdamWConfig& config, ParamRole role) {
  const bool is_norm_or_scale = role == ParamRole::kNormAlpha || role == ParamRole::kNormGain ||
                                role == ParamRole::kNormBias || role == ParamRole::kEmbedScale;
  return !(config.no_decay_norms_and_scales && is_norm_or_scale);
}

AdamW::AdamW(const ParamLayout& layout, const AdamWConfig& config)
    : AdamW(layout, config, 0, layout.total()) {}

AdamW::AdamW(const ParamLayout& layout, const AdamWConfig& config, int64_t begin, int64_t end)
    : layout_(layout),
      config_(config),
      m_(std::max<int64_t>(0, end - begin), 0.0f),
      v_(std::max<int64_t>(0, end - begin), 0.0f),
      begin_(begin),
      end_(end) {
  for (const ParamTensor& t : layout.tensors()) decay_.push_back(DecaysWeight(config, t.role));
}

void AdamW::Step(float* params, const float* grads, float lr) {
  ++step_;
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  // Same order of floating-point operations as torch.optim.AdamW (foreach=False).
  const float bc1 = 1.0f - float(std::pow(double(b1), double(step_)));
  const float bc2 = 1.0f - float(std::pow(double(b2), double(step_)));
  const float step_size = lr / bc1;
  const float bc2_sqrt = std::sqrt(bc2);
  for (size_t ti = 0; ti < layout_.tensors().size(); ++ti) {
    const ParamTensor& t = layout_.tensors()[ti];
    const int64_t lo = std::max(begin_, t.offset), hi = std::min(end_, t.offset + t.numel);
    if (lo >= hi) continue;
    const float decay = decay_[ti] ? 1.0f - lr * config_.weight_decay : 1.0f;
    float* p = params + lo;
    const float* g = grads + lo;
    float* m = m_.data() + (lo - begin_);
    float* v = v_.data() + (lo - begin_);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < hi - lo; ++i) {
      p[i] *= decay;
      m[i] = m[i] * b1 + g[i] * (1.0f - b1);
      v[i] = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
      const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      p[i] += -step_size * (m[i] / denom);
    }
  }
}

double GradNorm(const float* grads, int64_t n) {
  constexpr int kChunks = 64;  // fixed, so the sum order never depends on the thread count
  double part[kChunks] = {};
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kChunks; ++c) {
    double s = 0;
    for (int64_t i = n * c / kChunks; i < n * (c + 1) / kChunks; ++i)
      s += double(grads[i]) * grads[i];
    part[c] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return std::sqrt(s);
}

double ClipGradNorm(float* grads, int64_t n, float max_norm) {
  const double norm = GradNorm(grads, n);
  const float coef = float(max_norm / (norm + 1e-6));
  if (coef < 1.0f) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) grads[i] *= coef;
  }
  return norm;
}

}  // namespace dyt
