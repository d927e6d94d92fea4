// Where every parameter lives in the one flat fp32 parameter buffer.
//
// Parameters, gradients and both AdamW moments share this layout (same offsets in four
// buffers), so optimizer, gradient all-reduce and checkpoint code walk one list. Names follow
// Meta's LLaMA checkpoints ("layers.3.attention.wq.weight"), with the DyT parameters named
// "<norm>.alpha", "<norm>.weight" (gamma) and "<norm>.bias" (beta). docs/trainer.md lists them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/model/config.h"

namespace dyt {

// What kind of parameter a tensor is; used for init and for the no-decay switch.
enum class ParamRole {
  kEmbedding,   // tok_embeddings.weight
  kEmbedScale,  // embed_scale (scalar)
  kMatrix,      // Linear weights and the output head
  kNormAlpha,   // DyT alpha (scalar)
  kNormGain,    // DyT gamma / RMSNorm weight
  kNormBias,    // DyT beta
};

struct ParamTensor {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // in floats, into the flat buffer
  int64_t numel = 0;
  ParamRole role = ParamRole::kMatrix;
  float init_value = 0;  // constant init for non-random tensors (alpha, gamma, beta, scale)
};

// Offsets of one normalization layer (DyT or RMSNorm). -1 when absent.
struct NormOffsets {
  int64_t alpha = -1;
  int64_t weight = -1;
  int64_t bias = -1;
};

struct LayerOffsets {
  NormOffsets attn_norm;
  int64_t wq = 0, wk = 0, wv = 0, wo = 0;
  NormOffsets ffn_norm;
  int64_t w1 = 0, w2 = 0, w3 = 0;
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelConfig& config);

  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  int64_t total() const { return total_; }
  const ParamTensor* Find(const std::string& name) const;

  int64_t tok_embeddings() const { return tok_embeddings_; }
  int64_t embed_scale() const { return embed_scale_; }  // -1 when off
  const LayerOffsets& layer(int i) const { return layers_[i]; }
  const NormOffsets& final_norm() const { return final_norm_; }
  // The LM head: output.weight, or tok_embeddings.weight when tied.
  int64_t output() const { return output_; }

 private:
  int64_t Add(std::string name, std::vector<int64_t> shape, ParamRole role, float init = 0);
  NormOffsets AddNorm(const std::string& prefix, const ModelConfig& c, float alpha0);

  std::vector<ParamTensor> tensors_;
  int64_t total_ = 0;
  int64_t tok_embeddings_ = 0;
  int64_t embed_scale_ = -1;
  std::vector<LayerOffsets> layers_;
  NormOffsets final_norm_;
  int64_t output_ = 0;
};

}  // namespace dyt
