#include "services/worker/job_config.h"

#include <yaml-cpp/yaml.h>

#include "trainer/train/train_config.h"

namespace dyt::worker {

namespace {

template <typename T>
void SetIf(YAML::Node node, const char* key, T value) {
  if (value != T{}) node[key] = value;
}

YAML::Node ModelNode(const v1::ModelSpec& m) {
  YAML::Node n(YAML::NodeType::Map);
  SetIf(n, "preset", m.preset());
  SetIf(n, "norm", m.norm());
  SetIf(n, "vocab_size", m.vocab_size());
  SetIf(n, "dim", m.dim());
  SetIf(n, "n_layers", m.n_layers());
  SetIf(n, "n_heads", m.n_heads());
  SetIf(n, "n_kv_heads", m.n_kv_heads());
  SetIf(n, "ffn_dim", m.ffn_dim());
  SetIf(n, "max_seq_len", m.max_seq_len());
  SetIf(n, "rope_theta", m.rope_theta());
  if (m.has_tie_embeddings()) n["tie_embeddings"] = m.tie_embeddings();
  SetIf(n, "alpha0_attn", m.alpha0_attn());
  SetIf(n, "alpha0_ffn", m.alpha0_ffn());
  SetIf(n, "alpha0_final", m.alpha0_final());
  SetIf(n, "init_std", m.init_std());
  SetIf(n, "multiple_of", m.multiple_of());
  SetIf(n, "norm_eps", m.norm_eps());
  if (m.has_dyt_bias()) n["dyt_bias"] = m.dyt_bias();
  if (m.has_embed_scale()) n["embed_scale"] = m.embed_scale();
  return n;
}

YAML::Node DataNode(const v1::DataSpec& d, const std::vector<std::string>& roots) {
  YAML::Node n(YAML::NodeType::Map);
  if (!roots.empty()) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const std::string& root : roots) list.push_back(root);
    n["roots"] = list;
  }
  if (d.synthetic()) n["synthetic"] = true;
  if (d.train_paths_size() > 0) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const std::string& p : d.train_paths()) list.push_back(p);
    n["train_paths"] = list;
  }
  if (d.val_paths_size() > 0) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const std::string& p : d.val_paths()) list.push_back(p);
    n["val_paths"] = list;
  }
  SetIf(n, "tokenizer_path", d.tokenizer_path());
  SetIf(n, "format", d.format());
  SetIf(n, "seed", d.seed());
  SetIf(n, "val_fraction", d.val_fraction());
  SetIf(n, "max_val_windows", d.max_val_windows());
  return n;
}

YAML::Node OptimizerNode(const v1::OptimizerSpec& o) {
  YAML::Node n(YAML::NodeType::Map);
  SetIf(n, "lr", o.lr());
  SetIf(n, "min_lr", o.min_lr());
  SetIf(n, "warmup_steps", o.warmup_steps());
  SetIf(n, "beta1", o.beta1());
  SetIf(n, "beta2", o.beta2());
  SetIf(n, "eps", o.eps());
  SetIf(n, "weight_decay", o.weight_decay());
  SetIf(n, "grad_clip", o.grad_clip());
  if (o.no_decay_norms()) n["no_decay_norms"] = true;
  SetIf(n, "decay_steps", o.decay_steps());
  return n;
}

YAML::Node TrainNode(const v1::TrainSpec& t, int threads) {
  YAML::Node n(YAML::NodeType::Map);
  SetIf(n, "steps", t.steps());
  SetIf(n, "batch_size", t.batch_size());
  SetIf(n, "grad_accum", t.grad_accum());
  SetIf(n, "seq_len", t.seq_len());
  SetIf(n, "seed", t.seed());
  SetIf(n, "log_every", t.log_every());
  SetIf(n, "eval_every", t.eval_every());
  SetIf(n, "eval_batches", t.eval_batches());
  if (t.recompute()) n["recompute"] = true;
  if (t.has_deterministic()) n["deterministic"] = t.deterministic();
  if (t.zero1()) n["zero1"] = true;
  SetIf(n, "threads", threads);
  return n;
}

YAML::Node CheckpointNode(const v1::CheckpointPolicy& c, const std::string& dir,
                          const std::string& init_from, bool weights_only) {
  YAML::Node n(YAML::NodeType::Map);
  n["dir"] = dir;
  SetIf(n, "init_from", init_from);
  if (!init_from.empty() && weights_only) n["init_weights_only"] = true;
  SetIf(n, "every_steps", c.every_steps());
  SetIf(n, "every_minutes", c.every_minutes());
  SetIf(n, "keep_last", c.keep_last());
  SetIf(n, "keep_every_steps", c.keep_every_steps());
  return n;
}

}  // namespace

StatusOr<YAML::Node> TrainConfigFromJobSpec(const v1::JobSpec& spec, const JobPaths& paths) {
  if (paths.checkpoint_dir.empty()) {
    return InvalidArgument("checkpoint_dir: the assignment names no checkpoint directory");
  }
  if (paths.output_dir.empty()) return InvalidArgument("output_dir: must not be empty");
  if (paths.threads < 0) return InvalidArgument("threads: must be >= 0");
  YAML::Node root(YAML::NodeType::Map);
  root["model"] = ModelNode(spec.model());
  root["data"] = DataNode(spec.data(), paths.data_roots);
  root["optimizer"] = OptimizerNode(spec.optimizer());
  root["train"] = TrainNode(spec.train(), paths.threads);
  // A rank on GPU slots trains on its GPU (the CUDA backend; CUDA_VISIBLE_DEVICES names it).
  if (spec.resources().kind() == "gpu") root["train"]["device"] = "cuda";
  root["checkpoint"] = CheckpointNode(spec.checkpoint(), paths.checkpoint_dir,
                                      paths.init_checkpoint, spec.init_from_weights_only());
  YAML::Node output(YAML::NodeType::Map);
  output["dir"] = paths.output_dir;
  root["output"] = output;
  if (!paths.job_id.empty()) root["job_id"] = paths.job_id;
  if (paths.attempt > 0) root["job_attempt"] = paths.attempt;
  return root;
}

StatusOr<std::string> TrainYamlFromJobSpec(const v1::JobSpec& spec, const JobPaths& paths) {
  DYT_ASSIGN_OR_RETURN(const YAML::Node root, TrainConfigFromJobSpec(spec, paths));
  YAML::Emitter out;
  out << root;
  if (!out.good())
    return InvalidArgument("job spec: cannot be written as YAML: " + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

Status ValidateTrainConfig(const YAML::Node& root) {
  StatusOr<TrainConfig> config = ParseTrainConfig(root, /*keep_source=*/false);
  if (!config.ok()) return config.status();
  return Status::Ok();
}

Status ValidateTrainYaml(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("trainer config: not valid YAML: ") + e.what());
  }
  StatusOr<TrainConfig> config = ParseTrainConfig(root);
  if (!config.ok()) return config.status();
  return Status::Ok();
}

}  // namespace dyt::worker
