#include "common/yaml_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace dyt {

YamlReader::YamlReader(YAML::Node node, std::string path)
    : node_(std::move(node)), path_(std::move(path)) {}

std::string YamlReader::FieldPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

bool YamlReader::Has(const std::string& key) const {
  seen_.insert(key);
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

template <typename T>
Status YamlReader::GetScalar(const std::string& key, T& out, const char* type_name) {
  if (!Has(key)) return Status::Ok();
  const YAML::Node v = node_[key];
  if (!v.IsScalar()) {
    return InvalidArgument(FieldPath(key) + ": must be " + type_name);
  }
  try {
    out = v.as<T>();
  } catch (const YAML::Exception&) {
    return InvalidArgument(FieldPath(key) + ": must be " + type_name + " (got '" + v.Scalar() +
                           "')");
  }
  return Status::Ok();
}

Status YamlReader::Get(const std::string& key, int& out) {
  return GetScalar(key, out, "an integer");
}
Status YamlReader::Get(const std::string& key, int64_t& out) {
  return GetScalar(key, out, "an integer");
}
Status YamlReader::Get(const std::string& key, double& out) {
  return GetScalar(key, out, "a number");
}
Status YamlReader::Get(const std::string& key, float& out) {
  return GetScalar(key, out, "a number");
}
Status YamlReader::Get(const std::string& key, bool& out) {
  return GetScalar(key, out, "true or false");
}
Status YamlReader::Get(const std::string& key, std::string& out) {
  return GetScalar(key, out, "a string");
}

StatusOr<YamlReader> YamlReader::Child(const std::string& key) {
  if (!Has(key)) return YamlReader(YAML::Node(), FieldPath(key));
  const YAML::Node v = node_[key];
  if (!v.IsMap()) return InvalidArgument(FieldPath(key) + ": must be a map of fields");
  return YamlReader(v, FieldPath(key));
}

Status YamlReader::RejectUnknownKeys() const {
  if (!node_.IsMap()) return Status::Ok();
  std::set<std::string> keys;
  for (const auto& kv : node_) {
    // A key that is itself a map or a list ("? {a: 1}: x") is no field name (found by
    // tests/fuzz; as<std::string>() would throw).
    if (!kv.first.IsScalar()) return InvalidArgument(FieldPath("?") + ": keys must be plain names");
    const std::string key = kv.first.Scalar();
    if (!seen_.count(key)) return InvalidArgument(FieldPath(key) + ": unknown field");
    // yaml-cpp keeps both and answers with the first: the later value would be ignored.
    if (!keys.insert(key).second) {
      return InvalidArgument(FieldPath(key) + ": given twice (line " +
                             std::to_string(kv.first.Mark().line + 1) + ")");
    }
  }
  return Status::Ok();
}

StatusOr<YAML::Node> LoadYamlString(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument("YAML parse error at line " + std::to_string(e.mark.line + 1) +
                           ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

StatusOr<YAML::Node> LoadYamlFile(const std::string& path) {
  // A regular file of sane size: a directory, a FIFO or /dev/zero is no config (the last would
  // be read until memory runs out).
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return NotFound("cannot open config file " + path);
  if (!std::filesystem::is_regular_file(status)) {
    return InvalidArgument(path + ": not a regular file (a YAML config file is expected)");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxYamlFileBytes) {
    return InvalidArgument(
        path + ": " + std::to_string(size) + " bytes; a YAML config is at most " +
        std::to_string(kMaxYamlFileBytes >> 20) + " MiB (is it the right file?)");
  }
  std::ifstream in(path);
  if (!in) return NotFound("cannot open config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto node = LoadYamlString(ss.str());
  if (!node.ok()) return node.status().WithContext(path);
  return node;
}

}  // namespace dyt
