#include "trainer/model/param_init.h"

#include <algorithm>

#include "trainer/model/rng.h"

namespace dyt {

void InitParameters(const ModelConfig& config, const ParamLayout& layout, uint64_t seed,
                    float* params) {
  std::fill(params, params + layout.total(), 0.0f);
  for (size_t i = 0; i < layout.tensors().size(); ++i) {
    const ParamTensor& t = layout.tensors()[i];
    float* p = params + t.offset;
    if (t.role == ParamRole::kEmbedding || t.role == ParamRole::kMatrix) {
      Rng rng(MixSeed(seed, i));
      for (int64_t j = 0; j < t.numel; ++j) p[j] = float(rng.NextNormal() * config.init_std);
    } else {
      std::fill(p, p + t.numel, t.init_value);
    }
  }
}

}  // namespace dyt
