// Reading typed, validated fields out of YAML documents (configs and job specs).
//
// Every error names the full dotted path of the field and the rule it broke, e.g.
// "train.batch_size: must be >= 1 (got 0)", and unknown keys are rejected so a typo in a
// config never silently falls back to a default.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>

#include "common/status.h"

namespace dyt {

class YamlReader {
 public:
  // `node` is a map (or null/undefined: every Get then keeps its default). `path` is the
  // dotted prefix used in messages ("model", "train.optimizer").
  YamlReader(YAML::Node node, std::string path);

  // Reads `key` into `out` when present; leaves `out` unchanged when absent.
  Status Get(const std::string& key, int& out);
  Status Get(const std::string& key, int64_t& out);
  Status Get(const std::string& key, double& out);
  Status Get(const std::string& key, float& out);
  Status Get(const std::string& key, bool& out);
  Status Get(const std::string& key, std::string& out);
  // A child reader for a nested map.
  StatusOr<YamlReader> Child(const std::string& key);
  bool Has(const std::string& key) const;
  const YAML::Node& node() const { return node_; }
  std::string FieldPath(const std::string& key) const;

  // Fails naming the first key that no Get/Child/Has call asked about, or that is given twice.
  Status RejectUnknownKeys() const;

 private:
  template <typename T>
  Status GetScalar(const std::string& key, T& out, const char* type_name);

  YAML::Node node_;
  std::string path_;
  mutable std::set<std::string> seen_;  // keys asked about, for RejectUnknownKeys
};

// The largest YAML file LoadYamlFile reads.
inline constexpr uintmax_t kMaxYamlFileBytes = 16 << 20;

// Loads a YAML file, mapping parse errors to INVALID_ARGUMENT with the line and column; NOT_FOUND
// when it does not exist, INVALID_ARGUMENT for a directory or device, or a file over
// kMaxYamlFileBytes.
StatusOr<YAML::Node> LoadYamlFile(const std::string& path);
StatusOr<YAML::Node> LoadYamlString(const std::string& text);

}  // namespace dyt
