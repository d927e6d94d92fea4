#include "trainer/checkpoint/model_export.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/durable_file.h"
#include "trainer/checkpoint/safetensors_stream_writer.h"
#include "trainer/model/config.h"
#include "trainer/model/param_layout.h"

namespace dyt {
namespace {

using Json = nlohmann::ordered_json;

// Bumped when config.json or the tensor naming changes incompatibly.
constexpr int kExportFormatVersion = 1;

Json NumberOrNull(double v) { return v == v ? Json(v) : Json(nullptr); }

Json NormalizationJson(const ModelConfig& c) {
  const Json layers = {"layers.{i}.attention_norm", "layers.{i}.ffn_norm", "norm"};
  if (c.norm == NormKind::kRmsNorm) {
    return {{"kind", "rmsnorm"},
            {"formula", "y = x / sqrt(mean(x^2, last dim) + norm_eps) * weight"},
            {"eps", c.norm_eps},
            {"tensors", {"<norm>.weight [dim]"}},
            {"layers", layers}};
  }
  Json tensors = {"<norm>.alpha [1] (one scalar per norm layer)", "<norm>.weight [dim] (gamma)"};
  if (c.dyt_bias) tensors.push_back("<norm>.bias [dim] (beta)");
  return {
      {"kind", "dyt"},
      {"formula",
       c.dyt_bias ? "y = weight * tanh(alpha * x) + bias" : "y = weight * tanh(alpha * x)"},
      {"elementwise", "no mean or variance: every channel independently"},
      {"tensors", tensors},
      {"layers", layers},
      {"alpha0", {{"attention", c.alpha0_attn}, {"ffn", c.alpha0_ffn}, {"final", c.alpha0_final}}}};
}

Status WriteModelFile(const CheckpointState& state, const ParamLayout& layout, ExportDtype dtype,
                      const std::string& source, const std::string& out_dir) {
  SafetensorsStreamWriter writer;
  // "pt" is what Hugging Face loaders expect to find; the rest is for people.
  writer.SetMetadata("format", "pt");
  writer.SetMetadata("model_type", "llama-dyt");
  writer.SetMetadata("source", source);
  for (const ParamTensor& t : layout.tensors()) {
    const float* src = state.params.data() + t.offset;
    if (dtype == ExportDtype::kF32) {
      writer.AddF32(t.name, t.shape, src);
    } else {
      writer.AddF32AsBf16(t.name, t.shape, src);
    }
  }
  const std::string path = JoinPath(out_dir, "model.safetensors");
  const std::string tmp = JoinPath(out_dir, TempName("model.safetensors"));
  Status s = writer.Write(tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = IoError("rename", tmp, errno);
  if (!s.ok()) {
    (void)RemoveTree(tmp);
    return s;
  }
  return FsyncDir(out_dir);
}

}  // namespace

StatusOr<ExportDtype> ParseExportDtype(const std::string& name) {
  if (name == "f32") return ExportDtype::kF32;
  if (name == "bf16") return ExportDtype::kBF16;
  return InvalidArgument("--dtype: want f32 or bf16, got \"" + name + "\"");
}

StatusOr<std::string> ExportConfigJson(const CheckpointState& state, ExportDtype dtype,
                                       const std::string& source) {
  DYT_ASSIGN_OR_RETURN(const ModelConfig c, ModelConfigFromJson(state.model_config_json));
  const ParamLayout layout(c);
  Json j;
  j["model_type"] = "llama-dyt";
  j["export_format_version"] = kExportFormatVersion;
  j["torch_dtype"] = dtype == ExportDtype::kF32 ? "float32" : "bfloat16";
  // Every ModelConfig field under its dyt name (as in the job YAML), ...
  const Json fields = Json::parse(ModelConfigToJson(c));
  for (const auto& [k, v] : fields.items()) j[k] = v;
  j["head_dim"] = c.head_dim();
  // ... and the Hugging Face LLaMA names for tools that look for those.
  j["hidden_size"] = c.dim;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["intermediate_size"] = c.ffn_dim;
  j["max_position_embeddings"] = c.max_seq_len;
  j["tie_word_embeddings"] = c.tie_embeddings;

  j["architecture"] = {
      {"embedding", c.has_embed_scale()
                        ? "h = embed_scale * tok_embeddings.weight[token] (embed_scale: learnable "
                          "scalar, tensor [1], initialised to sqrt(dim))"
                        : "h = tok_embeddings.weight[token]"},
      {"block",
       "h = h + attention.wo(attn(rope(attention.wq(a)), rope(attention.wk(a)), "
       "attention.wv(a))) with a = attention_norm(h); "
       "h = h + feed_forward.w2(silu(feed_forward.w1(f)) * feed_forward.w3(f)) with f = "
       "ffn_norm(h)"},
      {"output", std::string("logits = norm(h) @ ") +
                     (c.tie_embeddings ? "tok_embeddings.weight" : "output.weight") + "^T"},
      {"linear_layout",
       "every weight is [out_features, in_features]: y = x @ W^T, as "
       "torch.nn.Linear"},
      {"attention",
       "causal, grouped-query: query head h uses key/value head h / (n_heads / n_kv_heads); "
       "scores scaled by 1 / sqrt(head_dim); no biases"},
      {"rope",
       {{"theta", c.rope_theta},
        {"convention",
         "interleaved pairs, as in Meta LLaMA (not the Hugging Face rotate_half "
         "layout): within each head, dims (2i, 2i+1) are rotated by the angle "
         "pos * theta^(-2i / head_dim), pos counted from 0"},
        {"applied_to", "q and k, after the projections, before attention"}}},
      {"normalization", NormalizationJson(c)},
  };
  Json tensors = Json::array();
  for (const ParamTensor& t : layout.tensors()) {
    tensors.push_back({{"name", t.name}, {"shape", t.shape}});
  }
  j["tensors"] = tensors;
  j["source"] = {{"checkpoint", source},
                 {"step", state.step},
                 {"tokens_seen", state.tokens_seen},
                 {"job_id", state.meta.job_id},
                 {"code_version", state.meta.code_version},
                 {"train_loss", NumberOrNull(state.meta.train_loss)},
                 {"val_loss", NumberOrNull(state.meta.val_loss)},
                 {"tokenizer_id", state.meta.tokenizer_id}};
  return j.dump(2) + "\n";
}

Status CheckExportDir(const std::string& out_dir, const std::string& source) {
  namespace fs = std::filesystem;
  if (out_dir.empty()) return InvalidArgument("--output: must name a directory");
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(out_dir, ec);
  const fs::path src = fs::weakly_canonical(source, ec);
  if (!ec && !src.empty()) {
    // The export's model.safetensors would replace the checkpoint's own (its manifest then
    // fails the size and digest checks, and a resume falls back to an older step).
    const auto [s_end, o_end] = std::mismatch(src.begin(), src.end(), out.begin(), out.end());
    if (s_end == src.end()) {
      return InvalidArgument("--output " + out_dir + ": is " +
                             (o_end == out.end() ? "the checkpoint directory " + source
                                                 : "inside the checkpoint directory " + source) +
                             "; export to a directory of its own");
    }
  }
  if (fs::exists(fs::path(out_dir) / "manifest.json", ec)) {
    return InvalidArgument("--output " + out_dir +
                           ": holds a checkpoint (manifest.json); export to a directory of its "
                           "own");
  }
  return Status::Ok();
}

Status ExportModel(const CheckpointState& state, ExportDtype dtype, const std::string& source,
                   const std::string& out_dir) {
  DYT_RETURN_IF_ERROR(CheckExportDir(out_dir, source));
  DYT_ASSIGN_OR_RETURN(const std::string config_json, ExportConfigJson(state, dtype, source));
  DYT_ASSIGN_OR_RETURN(const ModelConfig c, ModelConfigFromJson(state.model_config_json));
  const ParamLayout layout(c);
  if (state.params.size() != size_t(layout.total())) {
    return InvalidArgument("export: params hold " + std::to_string(state.params.size()) +
                           " floats, the model needs " + std::to_string(layout.total()));
  }
  DYT_RETURN_IF_ERROR(EnsureDir(out_dir));
  DYT_RETURN_IF_ERROR(WriteModelFile(state, layout, dtype, source, out_dir));
  return ReplaceFileAtomically(JoinPath(out_dir, "config.json"), config_json);
}

}  // namespace dyt
