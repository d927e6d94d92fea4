#include "trainer/checkpoint/manifest.h"

#include <sys/stat.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "common/sha256.h"
#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/durable_file.h"

namespace dyt {
namespace {

constexpr int64_t kMaxManifestBytes = 1 << 20;

// A name that cannot leave the checkpoint directory: the scheduler serves these files by name.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos && name != kManifestFile;
}

}  // namespace

StatusOr<ManifestEntry> DescribeFile(const std::string& dir, const std::string& name) {
  const std::string path = JoinPath(dir, name);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IoError("cannot stat", path, errno);
  ManifestEntry e;
  e.name = name;
  e.size = int64_t(st.st_size);
  DYT_ASSIGN_OR_RETURN(e.sha256, Sha256FileHex(path));
  return e;
}

std::string ManifestToJson(const Manifest& m) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const ManifestEntry& e : m.files) {
    files.push_back({{"name", e.name}, {"size", e.size}, {"sha256", e.sha256}});
  }
  const nlohmann::ordered_json j = {{"format", kCheckpointFormatName},
                                    {"format_version", m.format_version},
                                    {"step", m.step},
                                    {"files", files}};
  return j.dump(2) + "\n";
}

StatusOr<Manifest> ParseManifest(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [](const std::string& why) { return DataLoss("manifest.json: " + why); };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("format") || j["format"] != kCheckpointFormatName) {
    return bad(std::string("\"format\" is not \"") + kCheckpointFormatName + "\"");
  }
  if (!j.contains("format_version") || !j["format_version"].is_number_integer()) {
    return bad("\"format_version\" missing or not an integer");
  }
  Manifest m;
  m.format_version = j["format_version"].get<int>();
  if (m.format_version != kCheckpointFormatVersion) {
    return FailedPrecondition("manifest.json: format_version " + std::to_string(m.format_version) +
                              " is not supported (this build reads version " +
                              std::to_string(kCheckpointFormatVersion) + ")");
  }
  if (!j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() < 0) {
    return bad("\"step\" missing or not a non-negative integer");
  }
  m.step = j["step"].get<int64_t>();
  if (!j.contains("files") || !j["files"].is_array()) return bad("\"files\" is not an array");
  std::set<std::string> seen;
  for (const auto& f : j["files"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned() || !f.contains("sha256") || !f["sha256"].is_string()) {
      return bad("a \"files\" entry lacks name, size or sha256");
    }
    ManifestEntry e;
    e.name = f["name"].get<std::string>();
    e.size = f["size"].get<int64_t>();
    e.sha256 = f["sha256"].get<std::string>();
    if (!IsPlainFileName(e.name)) return bad("file name \"" + e.name + "\" is not allowed");
    if (!IsSha256Hex(e.sha256)) return bad(e.name + ": sha256 is not 64 lowercase hex digits");
    if (!seen.insert(e.name).second) return bad(e.name + " is listed twice");
    m.files.push_back(std::move(e));
  }
  return m;
}

StatusOr<Manifest> ReadManifest(const std::string& dir) {
  auto text = ReadFileToString(JoinPath(dir, kManifestFile), kMaxManifestBytes);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return DataLoss("manifest.json missing (checkpoint incomplete or not a checkpoint)");
    }
    return text.status();
  }
  return ParseManifest(*text);
}

Status VerifyManifestFiles(const std::string& dir, const Manifest& manifest) {
  for (const ManifestEntry& want : manifest.files) {
    const std::string path = JoinPath(dir, want.name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return DataLoss(want.name + ": missing (listed in manifest.json)");
      return IoError("cannot stat", path, errno);
    }
    if (int64_t(st.st_size) != want.size) {
      return DataLoss(want.name + ": size " + std::to_string(st.st_size) +
                      " bytes, manifest says " + std::to_string(want.size) +
                      " (file truncated or corrupt)");
    }
    DYT_ASSIGN_OR_RETURN(const std::string sha, Sha256FileHex(path));
    if (sha != want.sha256) return DataLoss(want.name + ": sha256 mismatch (file corrupt)");
  }
  return Status::Ok();
}

}  // namespace dyt
