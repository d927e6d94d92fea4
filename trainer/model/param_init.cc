#include "trainer/model/param_init.h"

#include <algorithm>

#include "trainer/model/rng.h"

namespace dyt {

void InitParameters(const ModelConfig& config, const ParamLayout& layout, uint64_t seed,
                    float* params) {
  std::fill(params, params + layout.total(), 0.0f);
  // Tensors in parallel: each draws from its own stream, so the result is the same bits for
  // any thread count (a 1B-parameter model initialises in seconds, not a minute).
  const int64_t n = int64_t(layout.tensors().size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    const ParamTensor& t = layout.tensors()[i];
    float* p = params + t.offset;
    if (t.role == ParamRole::kEmbedding || t.role == ParamRole::kMatrix) {
      Rng rng(MixSeed(seed, uint64_t(i)));
      for (int64_t j = 0; j < t.numel; ++j) p[j] = float(rng.NextNormal() * config.init_std);
    } else {
      std::fill(p, p + t.numel, t.init_value);
    }
  }
}

}  // namespace dyt
