// The LLaMA-DyT model configuration: shapes, normalization choice and DyT initialisation.
//
// A config starts from a named preset (ModelPreset) and is then overridden field by field
// (from YAML through ParseModelConfig). Validate() rejects impossible shapes with a message
// naming the field and the rule; every consumer may assume a validated config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/yaml_config.h"

namespace dyt {

enum class NormKind { kDyt, kRmsNorm };

const char* NormKindName(NormKind kind);

struct ModelConfig {
  int vocab_size = 4096;
  int dim = 256;
  int n_layers = 4;
  int n_heads = 4;
  int n_kv_heads = 4;  // grouped-query attention when < n_heads
  // FFN hidden width. 0 means "derive it as LLaMA does": 2/3 * 4 * dim rounded up to a
  // multiple of `multiple_of` (resolved by Finalize()).
  int ffn_dim = 0;
  int multiple_of = 256;
  int max_seq_len = 256;
  float rope_theta = 10000.0f;
  bool tie_embeddings = false;
  float init_std = 0.02f;

  NormKind norm = NormKind::kDyt;
  float norm_eps = 1e-5f;  // RMSNorm only
  // DyT alpha initial values. Negative means "take the paper's value for this width"
  // (resolved by Finalize(); see DefaultAlpha0).
  float alpha0_attn = -1.0f;
  float alpha0_ffn = -1.0f;
  float alpha0_final = -1.0f;
  bool dyt_bias = true;  // beta in DyT; the paper's LLaMA code has none
  // The learnable scalar after the embedding (init sqrt(dim)). Negative-one sentinel: -1 =
  // "on with DyT, off with RMSNorm" (resolved by Finalize()).
  int embed_scale = -1;

  int head_dim() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_dim(); }
  bool has_embed_scale() const { return embed_scale == 1; }

  // Resolves the derived defaults (ffn_dim, alpha0 values, embed_scale). Idempotent.
  void Finalize();
  // Checks every rule; returns INVALID_ARGUMENT naming the field ("model.n_heads: ...").
  Status Validate() const;
  // Total parameter count (uses checked 64-bit arithmetic; Validate() rejects overflow).
  int64_t ParameterCount() const;
  // A one-line human summary: "dyt dim=256 layers=4 heads=4/4 ffn=688 vocab=4096 params=…".
  std::string Summary() const;
};

// The paper's alpha0 for a model width (Table: attention / other):
// <=1024: 1.0/1.0, 2048: 1.0/0.5, 4096: 0.8/0.2, 5120: 0.6/0.15, >=8192: 0.2/0.05.
// Widths between table rows take the row of the next larger width.
struct Alpha0 {
  float attn;
  float other;
};
Alpha0 DefaultAlpha0(int dim);

// Named presets, from a tiny test model to LLaMA-7B shapes.
// Returns NOT_FOUND listing the known names for an unknown one.
StatusOr<ModelConfig> ModelPreset(const std::string& name);
std::vector<std::string> ModelPresetNames();

// Reads a `model:` YAML map: `preset` first, then any field override. Unknown keys are
// errors. The result is finalized and validated.
StatusOr<ModelConfig> ParseModelConfig(YamlReader& reader);

// JSON-compatible key/value view of the config (for checkpoints, config.json, events).
std::string ModelConfigToJson(const ModelConfig& config);
StatusOr<ModelConfig> ModelConfigFromJson(const std::string& json);

}  // namespace dyt
