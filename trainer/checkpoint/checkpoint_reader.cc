#include "trainer/checkpoint/checkpoint_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/durable_file.h"
#include "trainer/checkpoint/manifest.h"
#include "trainer/checkpoint/state_json.h"
#include "trainer/io/safetensors.h"
#include "trainer/model/param_layout.h"

namespace dyt {
namespace {

// state.json holds the job's YAML text; anything near this size is not ours.
constexpr int64_t kMaxStateBytes = 64 << 20;

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Without a trailing slash, so messages read "/store/step-00000123: ...".
std::string TrimSlashes(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

// The integrity part shared by LoadCheckpoint and VerifyCheckpoint. Messages carry no
// directory prefix; the public functions add it.
Status VerifyFiles(const std::string& dir, CheckpointState* state,
                   CheckpointUse use = CheckpointUse::kResume) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound("no such checkpoint directory");
    return IoError("cannot stat", dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) return NotFound("not a directory");
  DYT_ASSIGN_OR_RETURN(const Manifest manifest, ReadManifest(dir));
  for (const char* required : {kModelFile, kOptimizerFile, kStateFile}) {
    bool listed = false;
    for (const ManifestEntry& e : manifest.files) listed = listed || e.name == required;
    if (!listed) return DataLoss(std::string("manifest.json does not list ") + required);
  }
  if (use == CheckpointUse::kWeights) {
    // The optimizer file is not read: a damaged one does not keep the weights from use.
    Manifest weights = manifest;
    std::erase_if(weights.files, [](const ManifestEntry& e) { return e.name == kOptimizerFile; });
    DYT_RETURN_IF_ERROR(VerifyManifestFiles(dir, weights));
  } else {
    DYT_RETURN_IF_ERROR(VerifyManifestFiles(dir, manifest));
  }
  DYT_ASSIGN_OR_RETURN(const std::string text,
                       ReadFileToString(JoinPath(dir, kStateFile), kMaxStateBytes));
  DYT_RETURN_IF_ERROR(StateFromJson(text, state));
  if (state->step != manifest.step) {
    return DataLoss("state.json says step " + std::to_string(state->step) +
                    ", manifest.json says step " + std::to_string(manifest.step));
  }
  // A copied or renamed directory must not pass for another step.
  const auto dir_step = ParseStepDirName(BaseName(dir));
  if (dir_step && *dir_step != state->step) {
    return DataLoss("directory name says step " + std::to_string(*dir_step) +
                    ", state.json says step " + std::to_string(state->step));
  }
  return Status::Ok();
}

// "dim (checkpoint 64, expected 128)" for each field that differs. Fields that only choose the
// initial values (init_std, the DyT alpha inits) do not count: a resumed run takes its values
// from the checkpoint. Taking the weights alone, neither do the fields that shape no tensor.
std::string ConfigDifferences(const ModelConfig& stored, const ModelConfig& expected,
                              CheckpointUse use) {
  const nlohmann::json a = nlohmann::json::parse(ModelConfigToJson(stored));
  const nlohmann::json b = nlohmann::json::parse(ModelConfigToJson(expected));
  static const std::set<std::string> kInitOnly = {"init_std", "alpha0_attn", "alpha0_ffn",
                                                  "alpha0_final"};
  static const std::set<std::string> kNoTensor = {"max_seq_len", "rope_theta", "norm_eps"};
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  std::string out;
  for (const std::string& k : keys) {
    if (kInitOnly.count(k) > 0) continue;
    if (use == CheckpointUse::kWeights && kNoTensor.count(k) > 0) continue;
    const std::string va = a.contains(k) ? a[k].dump() : "absent";
    const std::string vb = b.contains(k) ? b[k].dump() : "absent";
    if (va == vb) continue;
    if (!out.empty()) out += ", ";
    out += k + " (checkpoint " + va + ", expected " + vb + ")";
  }
  return out;
}

// Copies the tensors named `prefix + <layout name>` from `file` into `dst` at the layout's
// offsets, requiring F32 and the layout's shapes. `expected` collects the names this file must
// hold, so the caller can reject extra tensors afterwards.
Status CopyTensors(const SafetensorsFile& file, const std::string& file_name,
                   const ParamLayout& layout, const std::string& prefix, float* dst,
                   std::set<std::string>* expected) {
  for (const ParamTensor& t : layout.tensors()) {
    const std::string name = prefix + t.name;
    expected->insert(name);
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      return DataLoss(file_name + ": tensor '" + name + "' missing");
    }
    const StTensor& st = it->second;
    if (st.dtype != StDtype::kF32) {
      return DataLoss(file_name + ": tensor '" + name + "' has dtype " + StDtypeName(st.dtype) +
                      ", want F32");
    }
    if (st.shape != t.shape) {
      return DataLoss(file_name + ": tensor '" + name + "' has shape " + ShapeString(st.shape) +
                      ", the model config wants " + ShapeString(t.shape));
    }
    std::memcpy(dst + t.offset, st.data.data(), size_t(t.numel) * sizeof(float));
  }
  return Status::Ok();
}

Status RejectExtraTensors(const SafetensorsFile& file, const std::string& file_name,
                          const std::set<std::string>& expected) {
  for (const auto& [name, t] : file.tensors) {
    if (!expected.count(name)) {
      return DataLoss(file_name + ": unexpected tensor '" + name + "' (not in the model config)");
    }
  }
  return Status::Ok();
}

Status LoadInto(const std::string& dir, const ModelConfig* expect, CheckpointUse use,
                CheckpointState* state) {
  DYT_RETURN_IF_ERROR(VerifyFiles(dir, state, use));
  auto config = ModelConfigFromJson(state->model_config_json);
  if (!config.ok()) {
    return DataLoss("state.json: model_config: " + config.status().message());
  }
  if (expect) {
    const std::string diff = ConfigDifferences(*config, *expect, use);
    if (!diff.empty()) {
      return FailedPrecondition("model config differs from the expected one: " + diff);
    }
  }
  const ParamLayout layout(*config);
  const size_t n = size_t(layout.total());
  // Zero-filled, so the layout's alignment padding is zero as after initialisation.
  state->params.assign(n, 0.0f);
  state->adam_m.assign(n, 0.0f);
  state->adam_v.assign(n, 0.0f);
  {
    auto model = ReadSafetensors(JoinPath(dir, kModelFile));
    // Its messages already name the file.
    if (!model.ok()) return DataLoss(model.status().message());
    std::set<std::string> expected;
    DYT_RETURN_IF_ERROR(
        CopyTensors(*model, kModelFile, layout, "", state->params.data(), &expected));
    DYT_RETURN_IF_ERROR(RejectExtraTensors(*model, kModelFile, expected));
  }
  if (use == CheckpointUse::kResume) {
    auto optimizer = ReadSafetensors(JoinPath(dir, kOptimizerFile));
    if (!optimizer.ok()) return DataLoss(optimizer.status().message());
    std::set<std::string> expected;
    DYT_RETURN_IF_ERROR(CopyTensors(*optimizer, kOptimizerFile, layout, ExpAvgName(""),
                                    state->adam_m.data(), &expected));
    DYT_RETURN_IF_ERROR(CopyTensors(*optimizer, kOptimizerFile, layout, ExpAvgSqName(""),
                                    state->adam_v.data(), &expected));
    DYT_RETURN_IF_ERROR(RejectExtraTensors(*optimizer, kOptimizerFile, expected));
  }
  // The canonical spelling, whatever formatting the file used.
  state->model_config_json = ModelConfigToJson(*config);
  return Status::Ok();
}

}  // namespace

StatusOr<CheckpointState> LoadCheckpoint(const std::string& dir, const ModelConfig* expect,
                                         CheckpointUse use) {
  CheckpointState state;
  const Status s = LoadInto(dir, expect, use, &state);
  if (!s.ok()) return s.WithContext(TrimSlashes(dir));
  return state;
}

Status VerifyCheckpoint(const std::string& dir) {
  CheckpointState state;
  return VerifyFiles(dir, &state).WithContext(TrimSlashes(dir));
}

}  // namespace dyt
