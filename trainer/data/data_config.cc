#include "trainer/data/data_config.h"

#include "trainer/data/shard_format.h"

namespace dyt {
namespace {

Status GetPathList(YamlReader& reader, const std::string& key, std::vector<std::string>& out) {
  if (!reader.Has(key)) return Status::Ok();
  const YAML::Node node = reader.node()[key];
  const std::string field = reader.FieldPath(key);
  out.clear();
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return Status::Ok();
  }
  if (!node.IsSequence()) return InvalidArgument(field + ": must be a path or a list of paths");
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar()) {
      return InvalidArgument(field + "[" + std::to_string(i) + "]: must be a path");
    }
    out.push_back(node[i].Scalar());
  }
  return Status::Ok();
}

}  // namespace

Status ReadDataConfig(YamlReader& reader, DataConfig& out) {
  DYT_RETURN_IF_ERROR(GetPathList(reader, "train_paths", out.train_paths));
  DYT_RETURN_IF_ERROR(GetPathList(reader, "val_paths", out.val_paths));
  DYT_RETURN_IF_ERROR(reader.Get("tokenizer_path", out.tokenizer_path));
  DYT_RETURN_IF_ERROR(GetPathList(reader, "roots", out.roots));
  DYT_RETURN_IF_ERROR(reader.Get("format", out.format));
  if (auto f = ParseShardFormat(out.format); !f.ok()) {
    return f.status().WithContext(reader.FieldPath("format"));
  }
  int64_t seed = static_cast<int64_t>(out.seed);
  DYT_RETURN_IF_ERROR(reader.Get("seed", seed));
  if (seed < 0) return InvalidArgument(reader.FieldPath("seed") + ": must be >= 0");
  out.seed = static_cast<uint64_t>(seed);
  DYT_RETURN_IF_ERROR(reader.Get("val_fraction", out.val_fraction));
  if (!(out.val_fraction >= 0 && out.val_fraction < 1)) {
    return InvalidArgument(reader.FieldPath("val_fraction") + ": must be in [0, 1)");
  }
  DYT_RETURN_IF_ERROR(reader.Get("max_val_windows", out.max_val_windows));
  if (out.max_val_windows < 0) {
    return InvalidArgument(reader.FieldPath("max_val_windows") + ": must be >= 0");
  }
  return reader.RejectUnknownKeys();
}

}  // namespace dyt
