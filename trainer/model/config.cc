#include "trainer/model/config.h"

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

namespace dyt {
namespace {

ModelConfig Make(int vocab, int dim, int layers, int heads, int kv_heads, int ffn, int seq) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.ffn_dim = ffn;
  c.max_seq_len = seq;
  return c;
}

const std::map<std::string, ModelConfig>& Presets() {
  static const auto* presets = new std::map<std::string, ModelConfig>{
      // For unit tests: small enough for finite differences, GQA on.
      {"test", Make(96, 32, 2, 4, 2, 48, 16)},
      {"tiny", Make(4096, 256, 4, 4, 4, 688, 256)},
      {"small", Make(8192, 384, 6, 6, 6, 1024, 256)},
      {"gpt-small", Make(32768, 768, 12, 12, 12, 2048, 1024)},
      {"1b", Make(32768, 2048, 16, 16, 16, 5632, 2048)},
      {"llama-7b", Make(32000, 4096, 32, 32, 32, 11008, 4096)},
      {"llama-13b", Make(32000, 5120, 40, 40, 40, 13824, 4096)},
      {"llama-70b", Make(32000, 8192, 80, 64, 8, 28672, 4096)},
  };
  return *presets;
}

// Checked 64-bit arithmetic for parameter counts: a config that overflows is rejected.
bool MulOverflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool AddOverflows(int64_t a, int64_t b, int64_t* out) { return __builtin_add_overflow(a, b, out); }

// Returns -1 on overflow.
int64_t CheckedParameterCount(const ModelConfig& c) {
  const int64_t d = c.dim, kv = int64_t(c.n_kv_heads) * (c.dim / std::max(1, c.n_heads));
  const int64_t norm = c.norm == NormKind::kDyt ? 1 + d + (c.dyt_bias ? d : 0) : d;
  int64_t attn = 0, ffn = 0, layer = 0, total = 0, emb = 0, t = 0;
  if (MulOverflows(d, d, &attn) || MulOverflows(attn, 2, &attn)) return -1;  // wq, wo
  if (MulOverflows(kv, d, &t) || MulOverflows(t, 2, &t) || AddOverflows(attn, t, &attn)) {
    return -1;  // wk, wv
  }
  if (MulOverflows(c.ffn_dim, d, &ffn) || MulOverflows(ffn, 3, &ffn)) return -1;
  if (AddOverflows(attn, ffn, &layer) || AddOverflows(layer, 2 * norm, &layer)) return -1;
  if (MulOverflows(layer, c.n_layers, &total)) return -1;
  if (MulOverflows(c.vocab_size, d, &emb)) return -1;
  if (AddOverflows(total, emb, &total)) return -1;
  if (!c.tie_embeddings && AddOverflows(total, emb, &total)) return -1;
  if (AddOverflows(total, norm + (c.has_embed_scale() ? 1 : 0), &total)) return -1;
  return total;
}

}  // namespace

const char* NormKindName(NormKind kind) { return kind == NormKind::kDyt ? "dyt" : "rmsnorm"; }

Alpha0 DefaultAlpha0(int dim) {
  if (dim <= 1024) return {1.0f, 1.0f};
  if (dim <= 2048) return {1.0f, 0.5f};
  if (dim <= 4096) return {0.8f, 0.2f};
  if (dim <= 5120) return {0.6f, 0.15f};
  return {0.2f, 0.05f};
}

void ModelConfig::Finalize() {
  if (ffn_dim == 0 && multiple_of > 0) {
    const int64_t hidden = (int64_t(8) * dim) / 3;  // 2/3 of 4 * dim, as in LLaMA
    ffn_dim = int((hidden + multiple_of - 1) / multiple_of * multiple_of);
  }
  const Alpha0 a = DefaultAlpha0(dim);
  if (alpha0_attn < 0) alpha0_attn = a.attn;
  if (alpha0_ffn < 0) alpha0_ffn = a.other;
  if (alpha0_final < 0) alpha0_final = a.other;
  if (embed_scale < 0) embed_scale = norm == NormKind::kDyt ? 1 : 0;
}

Status ModelConfig::Validate() const {
  auto positive = [](const char* field, int64_t v) -> Status {
    if (v <= 0) {
      return InvalidArgument(std::string("model.") + field + ": must be > 0 (got " +
                             std::to_string(v) + ")");
    }
    return Status::Ok();
  };
  DYT_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  DYT_RETURN_IF_ERROR(positive("dim", dim));
  DYT_RETURN_IF_ERROR(positive("n_layers", n_layers));
  DYT_RETURN_IF_ERROR(positive("n_heads", n_heads));
  DYT_RETURN_IF_ERROR(positive("n_kv_heads", n_kv_heads));
  DYT_RETURN_IF_ERROR(positive("ffn_dim", ffn_dim));
  DYT_RETURN_IF_ERROR(positive("max_seq_len", max_seq_len));
  if (dim % n_heads != 0) {
    return InvalidArgument("model.dim: must be divisible by model.n_heads (" + std::to_string(dim) +
                           " % " + std::to_string(n_heads) + " != 0)");
  }
  if (n_heads % n_kv_heads != 0) {
    return InvalidArgument("model.n_heads: must be divisible by model.n_kv_heads (" +
                           std::to_string(n_heads) + " % " + std::to_string(n_kv_heads) + " != 0)");
  }
  if (head_dim() % 2 != 0) {
    return InvalidArgument("model.dim: head dimension dim / n_heads = " +
                           std::to_string(head_dim()) + " must be even for RoPE");
  }
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) {
    return InvalidArgument("model.rope_theta: must be a positive finite number");
  }
  if (!(init_std > 0) || !std::isfinite(init_std)) {
    return InvalidArgument("model.init_std: must be a positive finite number");
  }
  if (norm == NormKind::kRmsNorm && !(norm_eps > 0)) {
    return InvalidArgument("model.norm_eps: must be > 0");
  }
  if (norm == NormKind::kDyt) {
    const std::pair<const char*, float> alphas[] = {
        {"alpha0_attn", alpha0_attn}, {"alpha0_ffn", alpha0_ffn}, {"alpha0_final", alpha0_final}};
    for (const auto& [field, value] : alphas) {
      if (!(value > 0) || !std::isfinite(value)) {
        return InvalidArgument(std::string("model.") + field +
                               ": must be a positive finite number (got " + std::to_string(value) +
                               ")");
      }
    }
  }
  // Activations index rows as int64 but channels and vocab as int: keep their products sane.
  if (int64_t(max_seq_len) * std::max(dim, ffn_dim) > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument("model.max_seq_len: max_seq_len * max(dim, ffn_dim) overflows int32");
  }
  if (CheckedParameterCount(*this) < 0) {
    return InvalidArgument("model: parameter count overflows 64-bit integers");
  }
  return Status::Ok();
}

int64_t ModelConfig::ParameterCount() const { return CheckedParameterCount(*this); }

std::string ModelConfig::Summary() const {
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                "%s dim=%d layers=%d heads=%d/%d ffn=%d vocab=%d seq=%d params=%.2fM%s%s",
                NormKindName(norm), dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size,
                max_seq_len, double(ParameterCount()) / 1e6, tie_embeddings ? " tied" : "",
                has_embed_scale() ? " embed_scale" : "");
  std::string s = buf;
  if (norm == NormKind::kDyt) {
    std::snprintf(buf, sizeof(buf), " alpha0(attn/ffn/final)=%g/%g/%g%s", alpha0_attn, alpha0_ffn,
                  alpha0_final, dyt_bias ? " bias" : " no-bias");
    s += buf;
  }
  return s;
}

std::vector<std::string> ModelPresetNames() {
  std::vector<std::string> names;
  for (const auto& [name, _] : Presets()) names.push_back(name);
  return names;
}

StatusOr<ModelConfig> ModelPreset(const std::string& name) {
  auto it = Presets().find(name);
  if (it == Presets().end()) {
    std::string known;
    for (const auto& n : ModelPresetNames()) known += (known.empty() ? "" : ", ") + n;
    return NotFound("model.preset: unknown preset '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

StatusOr<ModelConfig> ParseModelConfig(YamlReader& r) {
  ModelConfig c;
  std::string preset;
  DYT_RETURN_IF_ERROR(r.Get("preset", preset));
  if (!preset.empty()) {
    auto p = ModelPreset(preset);
    if (!p.ok()) return InvalidArgument(p.status().message());
    c = *p;
  }
  std::string norm = NormKindName(c.norm);
  DYT_RETURN_IF_ERROR(r.Get("norm", norm));
  if (norm == "dyt") {
    c.norm = NormKind::kDyt;
  } else if (norm == "rmsnorm") {
    c.norm = NormKind::kRmsNorm;
  } else {
    return InvalidArgument(r.FieldPath("norm") + ": must be 'dyt' or 'rmsnorm' (got '" + norm +
                           "')");
  }
  DYT_RETURN_IF_ERROR(r.Get("vocab_size", c.vocab_size));
  DYT_RETURN_IF_ERROR(r.Get("dim", c.dim));
  DYT_RETURN_IF_ERROR(r.Get("n_layers", c.n_layers));
  DYT_RETURN_IF_ERROR(r.Get("n_heads", c.n_heads));
  DYT_RETURN_IF_ERROR(r.Get("n_kv_heads", c.n_kv_heads));
  DYT_RETURN_IF_ERROR(r.Get("ffn_dim", c.ffn_dim));
  DYT_RETURN_IF_ERROR(r.Get("multiple_of", c.multiple_of));
  DYT_RETURN_IF_ERROR(r.Get("max_seq_len", c.max_seq_len));
  DYT_RETURN_IF_ERROR(r.Get("rope_theta", c.rope_theta));
  DYT_RETURN_IF_ERROR(r.Get("tie_embeddings", c.tie_embeddings));
  DYT_RETURN_IF_ERROR(r.Get("init_std", c.init_std));
  DYT_RETURN_IF_ERROR(r.Get("norm_eps", c.norm_eps));
  DYT_RETURN_IF_ERROR(r.Get("alpha0_attn", c.alpha0_attn));
  DYT_RETURN_IF_ERROR(r.Get("alpha0_ffn", c.alpha0_ffn));
  DYT_RETURN_IF_ERROR(r.Get("alpha0_final", c.alpha0_final));
  DYT_RETURN_IF_ERROR(r.Get("dyt_bias", c.dyt_bias));
  if (r.Has("embed_scale")) {
    bool on = false;
    DYT_RETURN_IF_ERROR(r.Get("embed_scale", on));
    c.embed_scale = on ? 1 : 0;
  }
  // Overriding n_heads alone means plain multi-head attention, not the preset's grouping.
  if (r.Has("n_heads") && !r.Has("n_kv_heads")) c.n_kv_heads = c.n_heads;
  DYT_RETURN_IF_ERROR(r.RejectUnknownKeys());
  if (c.multiple_of <= 0 && c.ffn_dim == 0) {
    return InvalidArgument(r.FieldPath("multiple_of") + ": must be > 0 when ffn_dim is 0");
  }
  c.Finalize();
  DYT_RETURN_IF_ERROR(c.Validate());
  return c;
}

std::string ModelConfigToJson(const ModelConfig& c) {
  nlohmann::json j = {
      {"vocab_size", c.vocab_size},
      {"dim", c.dim},
      {"n_layers", c.n_layers},
      {"n_heads", c.n_heads},
      {"n_kv_heads", c.n_kv_heads},
      {"ffn_dim", c.ffn_dim},
      {"max_seq_len", c.max_seq_len},
      {"rope_theta", c.rope_theta},
      {"tie_embeddings", c.tie_embeddings},
      {"init_std", c.init_std},
      {"norm", NormKindName(c.norm)},
      {"norm_eps", c.norm_eps},
      {"alpha0_attn", c.alpha0_attn},
      {"alpha0_ffn", c.alpha0_ffn},
      {"alpha0_final", c.alpha0_final},
      {"dyt_bias", c.dyt_bias},
      {"embed_scale", c.has_embed_scale()},
  };
  return j.dump();
}

StatusOr<ModelConfig> ModelConfigFromJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("model config: invalid JSON");
  ModelConfig c;
  try {
    c.vocab_size = j.at("vocab_size");
    c.dim = j.at("dim");
    c.n_layers = j.at("n_layers");
    c.n_heads = j.at("n_heads");
    c.n_kv_heads = j.at("n_kv_heads");
    c.ffn_dim = j.at("ffn_dim");
    c.max_seq_len = j.at("max_seq_len");
    c.rope_theta = j.at("rope_theta");
    c.tie_embeddings = j.at("tie_embeddings");
    c.init_std = j.at("init_std");
    c.norm = j.at("norm") == "dyt" ? NormKind::kDyt : NormKind::kRmsNorm;
    c.norm_eps = j.at("norm_eps");
    c.alpha0_attn = j.at("alpha0_attn");
    c.alpha0_ffn = j.at("alpha0_ffn");
    c.alpha0_final = j.at("alpha0_final");
    c.dyt_bias = j.at("dyt_bias");
    c.embed_scale = j.at("embed_scale").get<bool>() ? 1 : 0;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("model config: ") + e.what());
  }
  DYT_RETURN_IF_ERROR(c.Validate());
  return c;
}

}  // namespace dyt
