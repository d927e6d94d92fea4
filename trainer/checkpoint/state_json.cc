#include "trainer/checkpoint/state_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/sha256.h"
#include "trainer/checkpoint/checkpoint_names.h"

namespace dyt {
namespace {

// Reading uses std::map objects, so the embedded model config dumps with sorted keys: the
// canonical form ModelConfigToJson produces.
using Json = nlohmann::json;
// Writing keeps our field order, for people reading the file.
using OrderedJson = nlohmann::ordered_json;

// JSON has no NaN; null stands for "no value".
OrderedJson Number(double v) { return std::isnan(v) ? OrderedJson(nullptr) : OrderedJson(v); }

Status Bad(const std::string& field, const std::string& want) {
  return DataLoss("state.json: \"" + field + "\" missing or not " + want);
}

// Looks up a dotted path ("loader.epoch") one object level at a time.
const Json* Find(const Json& j, const std::string& path) {
  const Json* cur = &j;
  size_t begin = 0;
  while (true) {
    const size_t dot = path.find('.', begin);
    const std::string key = path.substr(begin, dot - begin);
    if (!cur->is_object() || !cur->contains(key)) return nullptr;
    cur = &(*cur)[key];
    if (dot == std::string::npos) return cur;
    begin = dot + 1;
  }
}

Status GetInt(const Json& j, const std::string& path, int64_t* out) {
  const Json* v = Find(j, path);
  if (!v || !v->is_number_integer()) return Bad(path, "an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) {
    return Bad(path, "an int64");
  }
  *out = v->get<int64_t>();
  return Status::Ok();
}

Status GetNonNegative(const Json& j, const std::string& path, int64_t* out) {
  DYT_RETURN_IF_ERROR(GetInt(j, path, out));
  if (*out < 0) return Bad(path, "a non-negative integer");
  return Status::Ok();
}

Status GetU64(const Json& j, const std::string& path, uint64_t* out) {
  const Json* v = Find(j, path);
  if (!v || !v->is_number_unsigned()) return Bad(path, "an unsigned integer");
  *out = v->get<uint64_t>();
  return Status::Ok();
}

Status GetString(const Json& j, const std::string& path, std::string* out) {
  const Json* v = Find(j, path);
  if (!v || !v->is_string()) return Bad(path, "a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

// A number, or null for NaN.
Status GetDouble(const Json& j, const std::string& path, double* out) {
  const Json* v = Find(j, path);
  if (!v || !(v->is_number() || v->is_null())) return Bad(path, "a number or null");
  *out = v->is_null() ? NAN : v->get<double>();
  return Status::Ok();
}

}  // namespace

std::string StateToJson(const CheckpointState& s) {
  OrderedJson j;
  j["format"] = kCheckpointFormatName;
  j["format_version"] = kCheckpointFormatVersion;
  j["step"] = s.step;
  j["tokens_seen"] = s.tokens_seen;
  j["adam_step"] = s.adam_step;
  j["loader"] = {{"epoch", s.loader.epoch}, {"index", s.loader.index}, {"seed", s.loader.seed}};
  j["rng_state"] = s.rng_state;
  j["meta"] = {{"job_id", s.meta.job_id},
               {"attempt", s.meta.attempt},
               {"train_loss", Number(s.meta.train_loss)},
               {"val_loss", Number(s.meta.val_loss)},
               {"unix_time", Number(s.meta.unix_time)},
               {"code_version", s.meta.code_version},
               {"world_size", s.meta.world_size},
               {"tokenizer_id", s.meta.tokenizer_id}};
  j["model_config"] = OrderedJson::parse(s.model_config_json, nullptr, /*allow_exceptions=*/false);
  j["train_config_yaml"] = s.train_config_yaml;
  return j.dump(2) + "\n";
}

Status StateFromJson(const std::string& text, CheckpointState* s) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return DataLoss("state.json: not a JSON object");
  std::string format;
  DYT_RETURN_IF_ERROR(GetString(j, "format", &format));
  if (format != kCheckpointFormatName) {
    return DataLoss(std::string("state.json: \"format\" is not \"") + kCheckpointFormatName + "\"");
  }
  int64_t version = 0;
  DYT_RETURN_IF_ERROR(GetInt(j, "format_version", &version));
  if (version != kCheckpointFormatVersion) {
    return FailedPrecondition("state.json: format_version " + std::to_string(version) +
                              " is not supported (this build reads version " +
                              std::to_string(kCheckpointFormatVersion) + ")");
  }
  DYT_RETURN_IF_ERROR(GetNonNegative(j, "step", &s->step));
  DYT_RETURN_IF_ERROR(GetNonNegative(j, "tokens_seen", &s->tokens_seen));
  DYT_RETURN_IF_ERROR(GetNonNegative(j, "adam_step", &s->adam_step));
  DYT_RETURN_IF_ERROR(GetU64(j, "loader.epoch", &s->loader.epoch));
  DYT_RETURN_IF_ERROR(GetU64(j, "loader.index", &s->loader.index));
  DYT_RETURN_IF_ERROR(GetU64(j, "loader.seed", &s->loader.seed));
  DYT_RETURN_IF_ERROR(GetU64(j, "rng_state", &s->rng_state));
  DYT_RETURN_IF_ERROR(GetString(j, "meta.job_id", &s->meta.job_id));
  // meta.attempt came after format version 1's first checkpoints: absent reads as 0.
  s->meta.attempt = 0;
  if (Find(j, "meta.attempt") != nullptr) {
    int64_t attempt = 0;
    DYT_RETURN_IF_ERROR(GetNonNegative(j, "meta.attempt", &attempt));
    if (attempt > INT32_MAX) return Bad("meta.attempt", "a non-negative int");
    s->meta.attempt = int(attempt);
  }
  DYT_RETURN_IF_ERROR(GetDouble(j, "meta.train_loss", &s->meta.train_loss));
  DYT_RETURN_IF_ERROR(GetDouble(j, "meta.val_loss", &s->meta.val_loss));
  DYT_RETURN_IF_ERROR(GetDouble(j, "meta.unix_time", &s->meta.unix_time));
  DYT_RETURN_IF_ERROR(GetString(j, "meta.code_version", &s->meta.code_version));
  int64_t world_size = 0;
  DYT_RETURN_IF_ERROR(GetInt(j, "meta.world_size", &world_size));
  if (world_size < 1 || world_size > INT32_MAX) return Bad("meta.world_size", "a positive int");
  s->meta.world_size = int(world_size);
  // meta.tokenizer_id came later too: absent reads as "" (unknown).
  s->meta.tokenizer_id.clear();
  if (Find(j, "meta.tokenizer_id") != nullptr) {
    DYT_RETURN_IF_ERROR(GetString(j, "meta.tokenizer_id", &s->meta.tokenizer_id));
    if (!s->meta.tokenizer_id.empty() && !IsSha256Hex(s->meta.tokenizer_id)) {
      return Bad("meta.tokenizer_id", "\"\" or a SHA-256 in lowercase hex");
    }
  }
  const Json* config = Find(j, "model_config");
  if (!config || !config->is_object()) return Bad("model_config", "an object");
  s->model_config_json = config->dump();
  DYT_RETURN_IF_ERROR(GetString(j, "train_config_yaml", &s->train_config_yaml));
  return Status::Ok();
}

}  // namespace dyt
