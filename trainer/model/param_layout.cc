#include "trainer/model/param_layout.h"

#include <cmath>

namespace dyt {

int64_t ParamLayout::Add(std::string name, std::vector<int64_t> shape, ParamRole role, float init) {
  ParamTensor t;
  t.name = std::move(name);
  t.numel = 1;
  for (int64_t s : shape) t.numel *= s;
  t.shape = std::move(shape);
  t.offset = total_;
  t.role = role;
  t.init_value = init;
  // Keep every tensor 16-float (64-byte) aligned so SIMD loops and memcpy start aligned.
  total_ += (t.numel + 15) / 16 * 16;
  tensors_.push_back(std::move(t));
  return tensors_.back().offset;
}

NormOffsets ParamLayout::AddNorm(const std::string& prefix, const ModelConfig& c, float alpha0) {
  NormOffsets n;
  if (c.norm == NormKind::kDyt) {
    n.alpha = Add(prefix + ".alpha", {1}, ParamRole::kNormAlpha, alpha0);
    n.weight = Add(prefix + ".weight", {c.dim}, ParamRole::kNormGain, 1.0f);
    if (c.dyt_bias) n.bias = Add(prefix + ".bias", {c.dim}, ParamRole::kNormBias, 0.0f);
  } else {
    n.weight = Add(prefix + ".weight", {c.dim}, ParamRole::kNormGain, 1.0f);
  }
  return n;
}

ParamLayout::ParamLayout(const ModelConfig& c) {
  tok_embeddings_ = Add("tok_embeddings.weight", {c.vocab_size, c.dim}, ParamRole::kEmbedding);
  if (c.has_embed_scale()) {
    embed_scale_ = Add("embed_scale", {1}, ParamRole::kEmbedScale, std::sqrt(float(c.dim)));
  }
  layers_.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerOffsets& l = layers_[i];
    l.attn_norm = AddNorm(p + "attention_norm", c, c.alpha0_attn);
    l.wq = Add(p + "attention.wq.weight", {c.dim, c.dim}, ParamRole::kMatrix);
    l.wk = Add(p + "attention.wk.weight", {c.kv_dim(), c.dim}, ParamRole::kMatrix);
    l.wv = Add(p + "attention.wv.weight", {c.kv_dim(), c.dim}, ParamRole::kMatrix);
    l.wo = Add(p + "attention.wo.weight", {c.dim, c.dim}, ParamRole::kMatrix);
    l.ffn_norm = AddNorm(p + "ffn_norm", c, c.alpha0_ffn);
    l.w1 = Add(p + "feed_forward.w1.weight", {c.ffn_dim, c.dim}, ParamRole::kMatrix);
    l.w2 = Add(p + "feed_forward.w2.weight", {c.dim, c.ffn_dim}, ParamRole::kMatrix);
    l.w3 = Add(p + "feed_forward.w3.weight", {c.ffn_dim, c.dim}, ParamRole::kMatrix);
  }
  final_norm_ = AddNorm("norm", c, c.alpha0_final);
  output_ = c.tie_embeddings ? tok_embeddings_
                             : Add("output.weight", {c.vocab_size, c.dim}, ParamRole::kMatrix);
}

const ParamTensor* ParamLayout::Find(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace dyt
