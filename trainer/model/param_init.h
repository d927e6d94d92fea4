// The deterministic parameter initialisation every backend uses, so a run starts from the same
// bits on CPU and GPU: N(0, init_std) for embeddings and matrices (each tensor from its own
// stream MixSeed(seed, tensor index), so adding a tensor does not change the others), the
// layout's constants for alpha, gamma, beta and the embedding scale, zeros in the padding.
#pragma once

#include <cstdint>

#include "trainer/model/config.h"
#include "trainer/model/param_layout.h"

namespace dyt {

// Writes layout.total() floats into `params`.
void InitParameters(const ModelConfig& config, const ParamLayout& layout, uint64_t seed,
                    float* params);

}  // namespace dyt
