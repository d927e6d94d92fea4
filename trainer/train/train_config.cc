#include "trainer/train/train_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace dyt {

const char* TrainDeviceName(TrainDevice d) { return d == TrainDevice::kCuda ? "cuda" : "cpu"; }

namespace {

// `v` as a person would write it: "12", "0.9", "1e-08", "inf".
std::string Shown(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

Status AtLeast(const YamlReader& r, const std::string& key, double v, double min) {
  if (!(v >= min)) {
    return InvalidArgument(r.FieldPath(key) + ": must be >= " + Shown(min) + " (got " + Shown(v) +
                           ")");
  }
  return Status::Ok();
}

// lo <= v < hi, or lo <= v <= hi with `hi_closed`; NaN and infinities fail.
Status InRange(const YamlReader& r, const std::string& key, double v, double lo, double hi,
               bool hi_closed = false) {
  if (!(v >= lo && (v < hi || (hi_closed && v == hi))) || !std::isfinite(v)) {
    return InvalidArgument(r.FieldPath(key) + ": must be in [" + Shown(lo) + ", " + Shown(hi) +
                           (hi_closed ? "]" : ")") + " (got " + Shown(v) + ")");
  }
  return Status::Ok();
}

Status ParseData(YamlReader& r, DataSection& d) {
  DYT_RETURN_IF_ERROR(r.Get("synthetic", d.synthetic));
  DYT_RETURN_IF_ERROR(r.Get("repeat_batch", d.repeat_batch));
  DYT_RETURN_IF_ERROR(ReadDataConfig(r, d.shards));  // also rejects unknown keys
  if (!d.synthetic && d.shards.train_paths.empty()) {
    return InvalidArgument(r.FieldPath("train_paths") +
                           ": required (token shard paths) unless data.synthetic is true");
  }
  if (d.synthetic && (!d.shards.train_paths.empty() || !d.shards.val_paths.empty())) {
    // Synthetic data ignores them: a run on random tokens the user did not mean to start.
    return InvalidArgument(r.FieldPath(d.shards.train_paths.empty() ? "val_paths" : "train_paths") +
                           ": not valid with data.synthetic (synthetic tokens replace the shards)");
  }
  if (d.repeat_batch && !d.synthetic) {
    return InvalidArgument(r.FieldPath("repeat_batch") + ": only valid with data.synthetic");
  }
  return Status::Ok();
}

Status ParseTrain(YamlReader& r, TrainSection& t) {
  DYT_RETURN_IF_ERROR(r.Get("steps", t.steps));
  DYT_RETURN_IF_ERROR(r.Get("batch_size", t.batch_size));
  DYT_RETURN_IF_ERROR(r.Get("grad_accum", t.grad_accum));
  DYT_RETURN_IF_ERROR(r.Get("seq_len", t.seq_len));
  int64_t seed = int64_t(t.seed);
  DYT_RETURN_IF_ERROR(r.Get("seed", seed));
  DYT_RETURN_IF_ERROR(AtLeast(r, "seed", double(seed), 0));
  t.seed = uint64_t(seed);
  DYT_RETURN_IF_ERROR(r.Get("threads", t.threads));
  DYT_RETURN_IF_ERROR(r.Get("log_every", t.log_every));
  DYT_RETURN_IF_ERROR(r.Get("eval_every", t.eval_every));
  DYT_RETURN_IF_ERROR(r.Get("eval_batches", t.eval_batches));
  DYT_RETURN_IF_ERROR(r.Get("zero1", t.zero1));
  std::string device = TrainDeviceName(t.device);
  DYT_RETURN_IF_ERROR(r.Get("device", device));
  DYT_RETURN_IF_ERROR(r.Get("recompute", t.recompute));
  DYT_RETURN_IF_ERROR(r.Get("deterministic", t.deterministic));
  DYT_RETURN_IF_ERROR(r.RejectUnknownKeys());
  if (device == "cpu") {
    t.device = TrainDevice::kCpu;
  } else if (device == "cuda") {
    t.device = TrainDevice::kCuda;
  } else {
    return InvalidArgument(r.FieldPath("device") + ": must be cpu or cuda (got '" + device + "')");
  }
  if (t.recompute && t.device != TrainDevice::kCuda) {
    return InvalidArgument(r.FieldPath("recompute") + ": only valid with device cuda");
  }
  if (!t.deterministic && t.device != TrainDevice::kCuda) {
    return InvalidArgument(r.FieldPath("deterministic") +
                           ": false is only valid with device cuda (the cpu backend is always "
                           "deterministic)");
  }
  DYT_RETURN_IF_ERROR(AtLeast(r, "steps", double(t.steps), 1));
  DYT_RETURN_IF_ERROR(AtLeast(r, "batch_size", t.batch_size, 1));
  DYT_RETURN_IF_ERROR(AtLeast(r, "grad_accum", t.grad_accum, 1));
  DYT_RETURN_IF_ERROR(AtLeast(r, "seq_len", t.seq_len, 0));
  DYT_RETURN_IF_ERROR(InRange(r, "threads", t.threads, 0, kMaxThreads, /*hi_closed=*/true));
  DYT_RETURN_IF_ERROR(AtLeast(r, "log_every", t.log_every, 1));
  DYT_RETURN_IF_ERROR(AtLeast(r, "eval_every", t.eval_every, 0));
  DYT_RETURN_IF_ERROR(AtLeast(r, "eval_batches", t.eval_batches, 1));
  return Status::Ok();
}

Status ParseOptim(YamlReader& r, OptimSection& o, int64_t steps) {
  AdamWConfig& a = o.adamw;
  LrSchedule& s = o.schedule;
  s.total_steps = steps;
  DYT_RETURN_IF_ERROR(r.Get("lr", s.lr));
  s.min_lr = s.lr * 0.1f;
  DYT_RETURN_IF_ERROR(r.Get("min_lr", s.min_lr));
  DYT_RETURN_IF_ERROR(r.Get("warmup_steps", s.warmup_steps));
  DYT_RETURN_IF_ERROR(r.Get("decay_steps", s.total_steps));
  DYT_RETURN_IF_ERROR(r.Get("beta1", a.beta1));
  DYT_RETURN_IF_ERROR(r.Get("beta2", a.beta2));
  DYT_RETURN_IF_ERROR(r.Get("eps", a.eps));
  DYT_RETURN_IF_ERROR(r.Get("weight_decay", a.weight_decay));
  DYT_RETURN_IF_ERROR(r.Get("no_decay_norms", a.no_decay_norms_and_scales));
  DYT_RETURN_IF_ERROR(r.Get("grad_clip", o.grad_clip));
  DYT_RETURN_IF_ERROR(r.RejectUnknownKeys());
  if (!(s.lr > 0) || !std::isfinite(s.lr)) {
    return InvalidArgument(r.FieldPath("lr") + ": must be a positive finite number");
  }
  if (!(s.min_lr >= 0 && s.min_lr <= s.lr)) {
    return InvalidArgument(r.FieldPath("min_lr") + ": must be in [0, lr]");
  }
  DYT_RETURN_IF_ERROR(AtLeast(r, "warmup_steps", double(s.warmup_steps), 0));
  DYT_RETURN_IF_ERROR(AtLeast(r, "decay_steps", double(s.total_steps), 1));
  DYT_RETURN_IF_ERROR(InRange(r, "beta1", a.beta1, 0.0, 1.0));
  DYT_RETURN_IF_ERROR(InRange(r, "beta2", a.beta2, 0.0, 1.0));
  if (!(a.eps > 0 && a.eps <= 1)) {
    return InvalidArgument(r.FieldPath("eps") + ": must be in (0, 1] (got " + Shown(a.eps) + ")");
  }
  DYT_RETURN_IF_ERROR(InRange(r, "weight_decay", a.weight_decay, 0, 10, /*hi_closed=*/true));
  if (!(o.grad_clip >= 0) || !std::isfinite(o.grad_clip)) {
    return InvalidArgument(r.FieldPath("grad_clip") +
                           ": must be a finite number >= 0 (0 disables clipping; got " +
                           Shown(o.grad_clip) + ")");
  }
  return Status::Ok();
}

Status ParseCheckpoint(YamlReader& r, CheckpointSection& c) {
  DYT_RETURN_IF_ERROR(r.Get("dir", c.dir));
  DYT_RETURN_IF_ERROR(r.Get("every_steps", c.every_steps));
  DYT_RETURN_IF_ERROR(r.Get("every_minutes", c.every_minutes));
  DYT_RETURN_IF_ERROR(r.Get("keep_last", c.keep_last));
  DYT_RETURN_IF_ERROR(r.Get("keep_every_steps", c.keep_every_steps));
  DYT_RETURN_IF_ERROR(r.Get("init_from", c.init_from));
  DYT_RETURN_IF_ERROR(r.Get("init_weights_only", c.init_weights_only));
  DYT_RETURN_IF_ERROR(r.RejectUnknownKeys());
  if (c.init_weights_only && c.init_from.empty()) {
    return InvalidArgument(r.FieldPath("init_weights_only") +
                           ": needs checkpoint.init_from (the checkpoint to take weights from)");
  }
  DYT_RETURN_IF_ERROR(AtLeast(r, "every_steps", double(c.every_steps), 0));
  DYT_RETURN_IF_ERROR(AtLeast(r, "every_minutes", c.every_minutes, 0));
  DYT_RETURN_IF_ERROR(AtLeast(r, "keep_last", c.keep_last, 1));
  DYT_RETURN_IF_ERROR(AtLeast(r, "keep_every_steps", double(c.keep_every_steps), 0));
  return Status::Ok();
}

}  // namespace

StatusOr<TrainConfig> ParseTrainConfig(const YAML::Node& root, bool keep_source) {
  if (!root.IsMap()) return InvalidArgument("config: must be a YAML map with model/data/train");
  YamlReader r(root, "");
  TrainConfig c;
  DYT_ASSIGN_OR_RETURN(YamlReader model, r.Child("model"));
  DYT_ASSIGN_OR_RETURN(c.model, ParseModelConfig(model));
  DYT_ASSIGN_OR_RETURN(YamlReader train, r.Child("train"));
  DYT_RETURN_IF_ERROR(ParseTrain(train, c.train));
  if (c.train.seq_len == 0) c.train.seq_len = c.model.max_seq_len;
  if (c.train.seq_len > c.model.max_seq_len) {
    return InvalidArgument("train.seq_len: must be <= model.max_seq_len (" +
                           std::to_string(c.model.max_seq_len) + ")");
  }
  DYT_ASSIGN_OR_RETURN(YamlReader data, r.Child("data"));
  DYT_RETURN_IF_ERROR(ParseData(data, c.data));
  DYT_ASSIGN_OR_RETURN(YamlReader optim, r.Child("optimizer"));
  DYT_RETURN_IF_ERROR(ParseOptim(optim, c.optim, c.train.steps));
  DYT_ASSIGN_OR_RETURN(YamlReader output, r.Child("output"));
  DYT_RETURN_IF_ERROR(output.Get("dir", c.output_dir));
  DYT_RETURN_IF_ERROR(output.RejectUnknownKeys());
  DYT_ASSIGN_OR_RETURN(YamlReader ckpt, r.Child("checkpoint"));
  DYT_RETURN_IF_ERROR(ParseCheckpoint(ckpt, c.checkpoint));
  if (c.checkpoint.dir.empty() && !c.output_dir.empty()) {
    c.checkpoint.dir = c.output_dir + "/checkpoints";
  }
  if (c.checkpoint.dir.empty() &&
      (c.checkpoint.every_steps > 0 || c.checkpoint.every_minutes > 0)) {
    return InvalidArgument("checkpoint.dir: required for periodic checkpoints (or set output.dir)");
  }
  DYT_RETURN_IF_ERROR(r.Get("job_id", c.job_id));
  DYT_RETURN_IF_ERROR(r.Get("job_attempt", c.job_attempt));
  if (c.job_attempt < 0) return InvalidArgument("job_attempt: must be >= 0");
  DYT_RETURN_IF_ERROR(r.RejectUnknownKeys());
  if (keep_source) c.source_yaml = YAML::Dump(root);
  return c;
}

StatusOr<TrainConfig> LoadTrainConfig(const std::string& path) {
  DYT_ASSIGN_OR_RETURN(YAML::Node root, LoadYamlFile(path));
  auto c = ParseTrainConfig(root);
  if (!c.ok()) return c.status().WithContext(path);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  c->source_yaml = text.str();  // verbatim, comments included
  return c;
}

}  // namespace dyt
