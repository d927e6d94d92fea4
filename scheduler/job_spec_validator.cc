#include "scheduler/job_spec_validator.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string_view>
#include <utility>

#include "services/worker/job_config.h"
#include "trainer/model/config.h"

namespace dyt {
namespace {

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

Status Invalid(const std::string& field, const std::string& rule) {
  return InvalidArgument(field + ": " + rule);
}

// A number as a user wrote it: 0.9, 1e-08, 4096 (not std::to_string's "0.900000").
template <typename T>
std::string Str(T value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

template <typename T>
Status Invalid(const std::string& field, const std::string& rule, T got) {
  return InvalidArgument(field + ": " + rule + " (got " + Str(got) + ")");
}

// A name-like field: required, 1..128 characters of [A-Za-z0-9._-] (plus `extra`).
Status CheckName(const std::string& field, const std::string& value, std::string_view extra) {
  std::string rule = "required, at most " + std::to_string(JobSpecLimits::kMaxNameLength) +
                     " characters of [A-Za-z0-9._-" + std::string(extra) + "]";
  if (value.empty() || value.size() > static_cast<size_t>(JobSpecLimits::kMaxNameLength)) {
    return Invalid(field, rule + " (got " + std::to_string(value.size()) + " characters)");
  }
  for (char c : value) {
    if (!IsNameChar(c) && extra.find(c) == std::string_view::npos) {
      // The value as given, bytes outside printable ASCII as \xNN (at most 128 of them).
      std::string shown;
      for (unsigned char b : value) {
        if (b >= 0x20 && b < 0x7f) {
          shown += static_cast<char>(b);
        } else {
          static const char kHex[] = "0123456789abcdef";
          shown += std::string("\\x") + kHex[b >> 4] + kHex[b & 15];
        }
      }
      return Invalid(field, rule + " (got '" + shown + "')");
    }
  }
  return Status::Ok();
}

template <typename T>
Status CheckRange(const std::string& field, T value, T lo, T hi) {
  if (value < lo || value > hi) {
    return Invalid(field, "must be between " + Str(lo) + " and " + Str(hi), value);
  }
  return Status::Ok();
}

// `value` of spec field `field` ("model.dim") within its range in kJobSpecIntegerRanges.
Status CheckSpecRange(std::string_view field, int64_t value) {
  const JobSpecIntegerRange* range = FindJobSpecIntegerRange(field);
  if (range == nullptr) return Internal("no range for spec." + std::string(field));
  return CheckRange("spec." + std::string(field), value, range->lo, range->hi);
}

template <typename T>
Status CheckAtLeast(const std::string& field, T value, T lo) {
  if (value < lo) return Invalid(field, "must be >= " + std::to_string(lo), value);
  return Status::Ok();
}

// A float field: finite and within [lo, hi]; `hi_open` excludes hi.
Status CheckReal(const std::string& field, double value, double lo, double hi,
                 bool hi_open = false) {
  if (!std::isfinite(value)) return Invalid(field, "must be a finite number");
  if (value < lo || value > hi || (hi_open && value == hi)) {
    std::ostringstream range;
    range << "must be in [" << lo << ", " << hi << (hi_open ? ")" : "]");
    return Invalid(field, range.str(), value);
  }
  return Status::Ok();
}

Status CheckModel(const v1::ModelSpec& m) {
  if (m.preset().empty()) {
    std::string known;
    for (const auto& n : ModelPresetNames()) known += (known.empty() ? "" : ", ") + n;
    return Invalid("spec.model.preset", "required, one of " + known);
  }
  if (auto preset = ModelPreset(m.preset()); !preset.ok()) {
    // ModelPreset's message already says "model.preset: unknown preset ... (known: ...)".
    return InvalidArgument("spec." + preset.status().message());
  }
  if (!m.norm().empty() && m.norm() != "dyt" && m.norm() != "rmsnorm") {
    return Invalid("spec.model.norm", "must be dyt or rmsnorm (got '" + m.norm() + "')");
  }
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.vocab_size", m.vocab_size()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.dim", m.dim()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.n_layers", m.n_layers()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.n_heads", m.n_heads()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.n_kv_heads", m.n_kv_heads()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.ffn_dim", m.ffn_dim()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.max_seq_len", m.max_seq_len()));
  DYT_RETURN_IF_ERROR(CheckReal("spec.model.rope_theta", m.rope_theta(), 0, 1e9));
  DYT_RETURN_IF_ERROR(CheckReal("spec.model.alpha0_attn", m.alpha0_attn(), 0, 100));
  DYT_RETURN_IF_ERROR(CheckReal("spec.model.alpha0_ffn", m.alpha0_ffn(), 0, 100));
  DYT_RETURN_IF_ERROR(CheckReal("spec.model.alpha0_final", m.alpha0_final(), 0, 100));
  DYT_RETURN_IF_ERROR(CheckReal("spec.model.init_std", m.init_std(), 0, 1));
  DYT_RETURN_IF_ERROR(CheckSpecRange("model.multiple_of", m.multiple_of()));
  DYT_RETURN_IF_ERROR(CheckReal("spec.model.norm_eps", m.norm_eps(), 0, 1));
  if (m.dim() > 0 && m.n_heads() > 0 && m.dim() % m.n_heads() != 0) {
    return Invalid("spec.model.dim", "must be divisible by spec.model.n_heads (got " +
                                         std::to_string(m.dim()) + " and " +
                                         std::to_string(m.n_heads()) + ")");
  }
  return Status::Ok();
}

Status CheckOptimizer(const v1::OptimizerSpec& o) {
  DYT_RETURN_IF_ERROR(CheckReal("spec.optimizer.lr", o.lr(), 0, 10));
  DYT_RETURN_IF_ERROR(CheckReal("spec.optimizer.min_lr", o.min_lr(), 0, 10));
  if (o.lr() > 0 && o.min_lr() > o.lr()) {
    return Invalid("spec.optimizer.min_lr", "must be <= spec.optimizer.lr (got " + Str(o.min_lr()) +
                                                " > " + Str(o.lr()) + ")");
  }
  DYT_RETURN_IF_ERROR(CheckAtLeast<int64_t>("spec.optimizer.warmup_steps", o.warmup_steps(), 0));
  DYT_RETURN_IF_ERROR(CheckReal("spec.optimizer.beta1", o.beta1(), 0, 1, /*hi_open=*/true));
  DYT_RETURN_IF_ERROR(CheckReal("spec.optimizer.beta2", o.beta2(), 0, 1, /*hi_open=*/true));
  DYT_RETURN_IF_ERROR(CheckReal("spec.optimizer.eps", o.eps(), 0, 1));
  DYT_RETURN_IF_ERROR(CheckReal("spec.optimizer.weight_decay", o.weight_decay(), 0, 10));
  DYT_RETURN_IF_ERROR(CheckReal("spec.optimizer.grad_clip", o.grad_clip(), 0, 1e6));
  DYT_RETURN_IF_ERROR(CheckSpecRange("optimizer.decay_steps", o.decay_steps()));
  return Status::Ok();
}

Status CheckTrain(const v1::TrainSpec& t) {
  DYT_RETURN_IF_ERROR(CheckSpecRange("train.steps", t.steps()));
  if (t.batch_size() < 1) return Invalid("spec.train.batch_size", "must be >= 1", t.batch_size());
  DYT_RETURN_IF_ERROR(CheckSpecRange("train.batch_size", t.batch_size()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("train.grad_accum", t.grad_accum()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("train.seq_len", t.seq_len()));
  DYT_RETURN_IF_ERROR(CheckAtLeast("spec.train.log_every", t.log_every(), 0));
  DYT_RETURN_IF_ERROR(CheckAtLeast("spec.train.eval_every", t.eval_every(), 0));
  DYT_RETURN_IF_ERROR(CheckAtLeast("spec.train.eval_batches", t.eval_batches(), 0));
  return Status::Ok();
}

Status CheckResources(const v1::Resources& r) {
  if (r.ranks() < 1) return Invalid("spec.resources.ranks", "must be >= 1", r.ranks());
  DYT_RETURN_IF_ERROR(CheckSpecRange("resources.ranks", r.ranks()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("resources.slots_per_rank", r.slots_per_rank()));
  if (r.kind() != "cpu" && r.kind() != "gpu") {
    return Invalid("spec.resources.kind", "must be cpu or gpu (got '" + r.kind() + "')");
  }
  return Status::Ok();
}

// GPU ranks train with the CUDA backend, whose attention kernels are compiled for head
// dimensions 64 and 128: refuse other shapes at submission rather than at the trainer's start.
Status CheckGpuModel(const v1::ModelSpec& m) {
  auto preset = ModelPreset(m.preset());
  if (!preset.ok()) return Status::Ok();  // CheckModel reported it
  const int dim = m.dim() > 0 ? m.dim() : preset->dim;
  const int heads = m.n_heads() > 0 ? m.n_heads() : preset->n_heads;
  const int head_dim = heads > 0 ? dim / heads : 0;
  if (head_dim != 64 && head_dim != 128) {
    return Invalid("spec.model.dim", "dim / n_heads = " + std::to_string(dim) + " / " +
                                         std::to_string(heads) + " = " + std::to_string(head_dim) +
                                         "; gpu jobs need a head dimension of 64 or 128");
  }
  return Status::Ok();
}

// The trainer's own rules, on the config a worker would write for this spec: the ones across
// fields (train.seq_len <= the model's max_seq_len, n_heads a multiple of n_kv_heads, ...)
// are the trainer's to define, and a spec it would refuse must be refused here, before it is
// stored, rather than fail every attempt on a worker. Its field paths are the spec's below
// "spec." ("train.seq_len: must be <= model.max_seq_len (16)").
Status CheckWithTrainer(const v1::JobSpec& spec) {
  worker::JobPaths paths;
  paths.job_id = "job-000000000000";
  paths.attempt = 1;
  paths.checkpoint_dir = "/checkpoints";  // stand-ins: only the worker knows its own
  paths.output_dir = "/output";
  StatusOr<YAML::Node> config = worker::TrainConfigFromJobSpec(spec, paths);
  Status checked = config.ok() ? worker::ValidateTrainConfig(*config) : config.status();
  if (checked.ok()) return Status::Ok();
  return InvalidArgument("spec." + checked.message());
}

Status CheckCheckpoint(const v1::CheckpointPolicy& c) {
  DYT_RETURN_IF_ERROR(CheckAtLeast<int64_t>("spec.checkpoint.every_steps", c.every_steps(), 0));
  DYT_RETURN_IF_ERROR(CheckAtLeast<int64_t>("spec.checkpoint.every_minutes", c.every_minutes(), 0));
  DYT_RETURN_IF_ERROR(CheckAtLeast("spec.checkpoint.keep_last", c.keep_last(), 0));
  DYT_RETURN_IF_ERROR(
      CheckAtLeast<int64_t>("spec.checkpoint.keep_every_steps", c.keep_every_steps(), 0));
  return Status::Ok();
}

}  // namespace

JobSpecValidator::JobSpecValidator(JobSpecValidatorOptions options) : options_(std::move(options)) {
  for (auto& root : options_.data_roots) {
    root = std::filesystem::path(root).lexically_normal().string();
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    std::error_code ec;
    std::string resolved = std::filesystem::weakly_canonical(root, ec).string();
    if (ec || resolved.empty()) resolved = root;
    while (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
    resolved_roots_.push_back(resolved);
  }
}

Status JobSpecValidator::ValidatePath(const std::string& field, const std::string& path) const {
  if (path.empty()) return Invalid(field, "must not be empty");
  if (path.size() > static_cast<size_t>(JobSpecLimits::kMaxPathLength)) {
    return Invalid(field, "at most " + std::to_string(JobSpecLimits::kMaxPathLength) +
                              " characters (got " + std::to_string(path.size()) + ")");
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return Invalid(field, "must not contain control characters");
    }
  }
  std::filesystem::path p(path);
  if (!p.is_absolute()) return Invalid(field, "must be an absolute path (got '" + path + "')");
  for (const auto& part : p) {
    if (part == "..") return Invalid(field, "must not contain '..' (got '" + path + "')");
  }
  if (options_.data_roots.empty()) return Status::Ok();
  std::string normal = p.lexically_normal().string();
  // Resolved like realpath(3) (symlinks followed; a missing tail is kept as written), so a
  // symlink under a root that points outside every root is refused too.
  std::error_code ec;
  std::string resolved = std::filesystem::weakly_canonical(p, ec).string();
  if (ec) return Invalid(field, "cannot be resolved (got '" + path + "'): " + ec.message());
  auto under = [](const std::string& candidate, const std::string& root) {
    return root == "/" || candidate == root || candidate.rfind(root + "/", 0) == 0;
  };
  for (size_t i = 0; i < options_.data_roots.size(); ++i) {
    if (!under(normal, options_.data_roots[i])) continue;
    if (under(resolved, resolved_roots_[i])) return Status::Ok();
    return Invalid(field, "resolves outside the data root " + options_.data_roots[i] +
                              " through a symlink (got '" + path + "')");
  }
  std::string roots;
  for (const auto& root : options_.data_roots) roots += (roots.empty() ? "" : ", ") + root;
  return Invalid(field, "must be under an allowed data root (" + roots + "; got '" + path + "')");
}

Status JobSpecValidator::Validate(const v1::JobSpec& spec) const {
  size_t bytes = spec.ByteSizeLong();
  if (bytes > JobSpecLimits::kMaxSpecBytes) {
    return Invalid("spec", "at most " + std::to_string(JobSpecLimits::kMaxSpecBytes) +
                               " bytes serialized (got " + std::to_string(bytes) + ")");
  }
  DYT_RETURN_IF_ERROR(CheckName("spec.name", spec.name(), ""));
  DYT_RETURN_IF_ERROR(CheckName("spec.owner", spec.owner(), "@"));
  if (!spec.has_model()) return Invalid("spec.model", "required (at least model.preset)");
  DYT_RETURN_IF_ERROR(CheckModel(spec.model()));

  const v1::DataSpec& d = spec.data();
  if (d.train_paths().empty() && !d.synthetic()) {
    return Invalid("spec.data", "train_paths or synthetic required");
  }
  if (d.train_paths_size() > JobSpecLimits::kMaxPaths) {
    return Invalid("spec.data.train_paths",
                   "at most " + std::to_string(JobSpecLimits::kMaxPaths) + " entries",
                   d.train_paths_size());
  }
  if (d.val_paths_size() > JobSpecLimits::kMaxPaths) {
    return Invalid("spec.data.val_paths",
                   "at most " + std::to_string(JobSpecLimits::kMaxPaths) + " entries",
                   d.val_paths_size());
  }
  for (int i = 0; i < d.train_paths_size(); ++i) {
    DYT_RETURN_IF_ERROR(
        ValidatePath("spec.data.train_paths[" + std::to_string(i) + "]", d.train_paths(i)));
  }
  for (int i = 0; i < d.val_paths_size(); ++i) {
    DYT_RETURN_IF_ERROR(
        ValidatePath("spec.data.val_paths[" + std::to_string(i) + "]", d.val_paths(i)));
  }
  if (!d.tokenizer_path().empty()) {
    DYT_RETURN_IF_ERROR(ValidatePath("spec.data.tokenizer_path", d.tokenizer_path()));
  }
  static const char* const kFormats[] = {"", "auto", "dyt", "llmc", "raw_u16", "raw_u32"};
  bool format_ok = false;
  for (const char* f : kFormats) format_ok = format_ok || d.format() == f;
  if (!format_ok) {
    return Invalid("spec.data.format",
                   "must be auto, dyt, llmc, raw_u16 or raw_u32 (got '" + d.format() + "')");
  }
  DYT_RETURN_IF_ERROR(CheckReal("spec.data.val_fraction", d.val_fraction(), 0, 1, true));
  DYT_RETURN_IF_ERROR(CheckSpecRange("data.max_val_windows", d.max_val_windows()));

  DYT_RETURN_IF_ERROR(CheckOptimizer(spec.optimizer()));
  DYT_RETURN_IF_ERROR(CheckTrain(spec.train()));
  DYT_RETURN_IF_ERROR(CheckResources(spec.resources()));
  if (spec.resources().kind() == "gpu") DYT_RETURN_IF_ERROR(CheckGpuModel(spec.model()));
  if (spec.train().recompute() && spec.resources().kind() != "gpu") {
    return Invalid("spec.train.recompute", "only valid for gpu jobs (resources.kind: gpu)");
  }
  if (spec.train().has_deterministic() && !spec.train().deterministic() &&
      spec.resources().kind() != "gpu") {
    return Invalid("spec.train.deterministic",
                   "false is only valid for gpu jobs (resources.kind: gpu)");
  }
  DYT_RETURN_IF_ERROR(CheckSpecRange("priority", spec.priority()));
  if (spec.max_restarts() < 0) {
    return Invalid("spec.max_restarts", "must be >= 0", spec.max_restarts());
  }
  DYT_RETURN_IF_ERROR(CheckSpecRange("max_restarts", spec.max_restarts()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("stall_timeout_s", spec.stall_timeout_s()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("time_limit_s", spec.time_limit_s()));
  DYT_RETURN_IF_ERROR(CheckSpecRange("init_from_step", spec.init_from_step()));
  DYT_RETURN_IF_ERROR(CheckCheckpoint(spec.checkpoint()));
  return CheckWithTrainer(spec);
}

Status JobSpecValidator::ValidateClientRequestId(const std::string& id) {
  bool ok = id.size() <= static_cast<size_t>(JobSpecLimits::kMaxClientRequestIdLength);
  for (char c : id) ok = ok && c > 0x20 && c < 0x7f;
  if (!ok) {
    return Invalid("client_request_id",
                   "at most " + std::to_string(JobSpecLimits::kMaxClientRequestIdLength) +
                       " printable ASCII characters without spaces (got " +
                       std::to_string(id.size()) + " characters)");
  }
  return Status::Ok();
}

}  // namespace dyt
