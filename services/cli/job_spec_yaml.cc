#include "services/cli/job_spec_yaml.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "common/job_spec_limits.h"

namespace dyt::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The fields whose relative paths are resolved against the job file's directory.
bool IsDataPathField(const std::string& path) {
  return path == "data.train_paths" || path == "data.val_paths" || path == "data.tokenizer_path";
}

std::string ResolvePath(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path.front() == '/') return path;
  std::filesystem::path base =
      base_dir.empty() ? std::filesystem::current_path() : std::filesystem::path(base_dir);
  if (base.is_relative()) base = std::filesystem::current_path() / base;
  return (base / path).lexically_normal().string();
}

// Where a message points: "job.yaml:12:3: " for a file, "--set a.b=1: " for an override.
class Origin {
 public:
  static Origin File(std::string path) { return Origin(std::move(path), true); }
  static Origin Override(std::string assignment) {
    return Origin("--set " + std::move(assignment), false);
  }
  std::string At(const YAML::Mark& mark) const {
    if (!is_file_ || mark.is_null()) return name_ + ": ";
    return name_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
           ": ";
  }
  bool is_file() const { return is_file_; }

 private:
  Origin(std::string name, bool is_file) : name_(std::move(name)), is_file_(is_file) {}
  std::string name_;
  bool is_file_;
};

const char* TypeName(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
      return "an integer";
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "a non-negative integer";
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return "a number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_STRING:
      return "a string";
    default:
      return "a map of fields";
  }
}

std::string KnownFields(const Descriptor* d) {
  std::string known;
  for (int i = 0; i < d->field_count(); ++i) {
    known += (known.empty() ? "" : ", ") + d->field(i)->name();
  }
  return known;
}

// Parses `text` as a T for spec field `path`: "" when it is one, else the rule it breaks: for
// digits that do not fit, the field's range when the scheduler gives it one ("an integer
// between 0 and 1000"), else T's range; for anything else, `type_name`.
template <typename T>
std::string ParseInteger(const std::string& text, const std::string& path, const char* type_name,
                         T& out) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  if (ec == std::errc() && ptr == end && begin != end) return "";
  if (ec == std::errc::result_out_of_range && ptr == end) {
    if (const JobSpecIntegerRange* range = FindJobSpecIntegerRange(path)) {
      return "an integer between " + std::to_string(range->lo) + " and " +
             std::to_string(range->hi);
    }
    return "an integer between " + std::to_string(std::numeric_limits<T>::min()) + " and " +
           std::to_string(std::numeric_limits<T>::max());
  }
  return type_name;
}

// Reads YAML into messages by walking their descriptors, recording where each field was.
class SpecReader {
 public:
  SpecReader(Origin origin, JobSpecFile* file) : origin_(std::move(origin)), file_(file) {}

  // Reads map `node` into `msg`; `path` is the dotted prefix ("" for the spec itself).
  Status ReadMessage(const YAML::Node& node, const std::string& path, Message* msg) {
    if (!node.IsMap()) {
      return InvalidArgument(origin_.At(node.Mark()) + (path.empty() ? "job spec" : path) +
                             ": must be a map of fields");
    }
    const Descriptor* d = msg->GetDescriptor();
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        return InvalidArgument(origin_.At(kv.first.Mark()) + (path.empty() ? "" : path + ": ") +
                               "keys must be plain field names");
      }
      const std::string key = kv.first.Scalar();
      const std::string field_path = path.empty() ? key : path + "." + key;
      const FieldDescriptor* f = d->FindFieldByName(key);
      if (f == nullptr) {
        return InvalidArgument(origin_.At(kv.first.Mark()) + field_path + ": unknown field (" +
                               (path.empty() ? "sections and fields" : "fields of " + path) + ": " +
                               KnownFields(d) + ")");
      }
      if (!seen.insert(key).second) {
        return InvalidArgument(origin_.At(kv.first.Mark()) + field_path + ": duplicate key");
      }
      DYT_RETURN_IF_ERROR(ReadField(kv.first.Mark(), kv.second, field_path, f, msg));
    }
    return Status::Ok();
  }

  // Reads `value` into field `f` of `msg`; `mark` is where the field's key is.
  Status ReadField(const YAML::Mark& mark, const YAML::Node& value, const std::string& path,
                   const FieldDescriptor* f, Message* msg) {
    Record(path, mark);
    const Reflection* r = msg->GetReflection();
    if (!value.IsDefined() || value.IsNull()) {
      r->ClearField(msg, f);  // "key:" with no value, or "--set key=": the default
      return Status::Ok();
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) return Internal(path + ": repeated messages are not supported");
      return ReadMessage(value, path, r->MutableMessage(msg, f));
    }
    if (f->is_repeated()) {
      r->ClearField(msg, f);
      if (value.IsScalar()) return SetScalar(value, path, f, msg);
      if (!value.IsSequence()) {
        return InvalidArgument(origin_.At(value.Mark()) + path + ": must be " + TypeName(f) +
                               " or a list of them");
      }
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string element = path + "[" + std::to_string(i) + "]";
        Record(element, value[i].Mark());
        if (!value[i].IsScalar()) {
          return InvalidArgument(origin_.At(value[i].Mark()) + element + ": must be " +
                                 TypeName(f));
        }
        DYT_RETURN_IF_ERROR(SetScalar(value[i], element, f, msg));
      }
      return Status::Ok();
    }
    if (!value.IsScalar()) {
      return InvalidArgument(origin_.At(value.Mark()) + path + ": must be " + TypeName(f));
    }
    return SetScalar(value, path, f, msg);
  }

 private:
  void Record(const std::string& path, const YAML::Mark& mark) {
    if (!origin_.is_file() || mark.is_null()) return;
    file_->positions[path] = SourcePosition{mark.line + 1, mark.column + 1};
  }

  // Sets (or, for a repeated field, appends) the scalar `value`.
  Status SetScalar(const YAML::Node& value, const std::string& path, const FieldDescriptor* f,
                   Message* msg) {
    const Reflection* r = msg->GetReflection();
    const std::string& text = value.Scalar();
    auto bad = [&](const std::string& rule) {
      return InvalidArgument(origin_.At(value.Mark()) + path + ": must be " + rule + " (got '" +
                             text + "')");
    };
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = 0;
        if (auto rule = ParseInteger(text, path, TypeName(f), v); !rule.empty()) return bad(rule);
        rep ? r->AddInt32(msg, f, v) : r->SetInt32(msg, f, v);
        return Status::Ok();
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = 0;
        if (auto rule = ParseInteger(text, path, TypeName(f), v); !rule.empty()) return bad(rule);
        rep ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
        return Status::Ok();
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v = 0;
        if (auto rule = ParseInteger(text, path, TypeName(f), v); !rule.empty()) return bad(rule);
        rep ? r->AddUInt32(msg, f, v) : r->SetUInt32(msg, f, v);
        return Status::Ok();
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v = 0;
        if (auto rule = ParseInteger(text, path, TypeName(f), v); !rule.empty()) return bad(rule);
        rep ? r->AddUInt64(msg, f, v) : r->SetUInt64(msg, f, v);
        return Status::Ok();
      }
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double v = 0;
        try {
          v = value.as<double>();
        } catch (const YAML::Exception&) {
          return bad(TypeName(f));
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
          if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
            return bad("a number within float range");
          }
          rep ? r->AddFloat(msg, f, float(v)) : r->SetFloat(msg, f, float(v));
        } else {
          rep ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
        }
        return Status::Ok();
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v = false;
        try {
          v = value.as<bool>();
        } catch (const YAML::Exception&) {
          return bad(TypeName(f));
        }
        rep ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
        return Status::Ok();
      }
      case FieldDescriptor::CPPTYPE_STRING:
        rep ? r->AddString(msg, f, text) : r->SetString(msg, f, text);
        return Status::Ok();
      default:
        return Internal(path + ": unsupported field type");
    }
  }

  Origin origin_;
  JobSpecFile* file_;
};

void ResolveDataPaths(v1::DataSpec* data, const std::string& base_dir, const std::string& only) {
  auto want = [&](const char* field) { return only.empty() || only == field; };
  if (want("data.train_paths")) {
    for (auto& p : *data->mutable_train_paths()) p = ResolvePath(p, base_dir);
  }
  if (want("data.val_paths")) {
    for (auto& p : *data->mutable_val_paths()) p = ResolvePath(p, base_dir);
  }
  if (want("data.tokenizer_path") && !data->tokenizer_path().empty()) {
    data->set_tokenizer_path(ResolvePath(data->tokenizer_path(), base_dir));
  }
}

}  // namespace

std::optional<std::string> JobSpecFile::Locate(const std::string& field) const {
  std::string f = field;
  while (!f.empty()) {
    auto it = positions.find(f);
    if (it != positions.end()) return path + ":" + std::to_string(it->second.line);
    size_t cut = f.find_last_of(".[");
    if (cut == std::string::npos) break;
    f.resize(cut);
  }
  return std::nullopt;
}

StatusOr<JobSpecFile> ParseJobSpecYaml(const std::string& text, const std::string& display_path,
                                       const JobSpecParseOptions& options) {
  JobSpecFile file;
  file.path = display_path;
  YAML::Node root;
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.size() > 1) {
      // A second document would be ignored without a word: refuse it instead.
      return InvalidArgument(Origin::File(display_path).At(documents[1].Mark()) +
                             "a job spec is one YAML document; this file has " +
                             std::to_string(documents.size()) + " (remove the '---' separators)");
    }
    if (!documents.empty()) root = documents[0];
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(Origin::File(display_path).At(e.mark) + "YAML syntax error: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) {
    return InvalidArgument(display_path + ": empty job spec (expected a map with name, model, " +
                           "data, train, resources, ...)");
  }
  SpecReader reader(Origin::File(display_path), &file);
  DYT_RETURN_IF_ERROR(reader.ReadMessage(root, "", &file.spec));
  if (file.spec.owner().empty()) file.spec.set_owner(options.default_owner);
  if (file.spec.has_data()) ResolveDataPaths(file.spec.mutable_data(), options.base_dir, "");
  return file;
}

StatusOr<JobSpecFile> LoadJobSpecFile(const std::string& path, const std::string& default_owner) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgument(path + ": is a directory, not a job spec file");
  }
  // A device or a pipe has no size to check and may never end (/dev/zero): files only.
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    return InvalidArgument(path + ": not a regular file (a job spec is a YAML file)");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > JobSpecLimits::kMaxSpecFileBytes) {
    return InvalidArgument(
        path + ": " + std::to_string(size) + " bytes; a job spec file is at most " +
        std::to_string(JobSpecLimits::kMaxSpecFileBytes >> 20) + " MiB (is it the right file?)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return NotFound(path + ": cannot open the job spec file (" + std::strerror(err) + ")");
  }
  std::stringstream text;
  text << in.rdbuf();
  JobSpecParseOptions options;
  options.default_owner = default_owner;
  options.base_dir = std::filesystem::path(path).parent_path().string();
  if (options.base_dir.empty()) options.base_dir = ".";
  return ParseJobSpecYaml(text.str(), path, options);
}

Status ApplyJobSpecOverride(const std::string& assignment, JobSpecFile& file) {
  Origin origin = Origin::Override(assignment);
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument(origin.At(YAML::Mark::null_mark()) + "expected key=value");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = text.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(origin.At(YAML::Mark::null_mark()) + "value: " + e.msg);
  }

  Message* msg = &file.spec;
  std::string path;
  std::stringstream parts(key);
  std::vector<std::string> names;
  for (std::string part; std::getline(parts, part, '.');) names.push_back(part);
  SpecReader reader(origin, &file);
  for (size_t i = 0; i < names.size(); ++i) {
    const Descriptor* d = msg->GetDescriptor();
    const std::string parent = path;
    path = path.empty() ? names[i] : path + "." + names[i];
    const FieldDescriptor* f = d->FindFieldByName(names[i]);
    if (f == nullptr) {
      return InvalidArgument(origin.At(YAML::Mark::null_mark()) + path + ": unknown field (" +
                             (parent.empty() ? "sections and fields" : "fields of " + parent) +
                             ": " + KnownFields(d) + ")");
    }
    if (i + 1 < names.size()) {
      if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
        return InvalidArgument(origin.At(YAML::Mark::null_mark()) + path + ": is a " +
                               "value, not a section");
      }
      msg = msg->GetReflection()->MutableMessage(msg, f);
      continue;
    }
    DYT_RETURN_IF_ERROR(reader.ReadField(YAML::Mark::null_mark(), value, path, f, msg));
    if (IsDataPathField(path)) ResolveDataPaths(file.spec.mutable_data(), "", path);
    NoteOverride(file, path, "--set " + assignment);
  }
  return Status::Ok();
}

void NoteOverride(JobSpecFile& file, const std::string& field, const std::string& option) {
  file.overrides[field] = option;
}

std::string AttributeServerError(const JobSpecFile& file, const std::string& message) {
  size_t colon = message.find(": ");
  if (colon == std::string::npos) return message;
  const std::string field = message.substr(0, colon);
  std::string rel;
  if (field.rfind("spec.", 0) == 0) {
    rel = field.substr(5);
  } else if (field != "spec") {
    return message;
  }
  const std::string rest = message.substr(colon + 2);
  if (rel.empty()) return file.path + ": " + rest;
  for (std::string f = rel; !f.empty();) {
    auto it = file.overrides.find(f);
    if (it != file.overrides.end()) return it->second + ": " + rel + ": " + rest;
    size_t cut = f.find_last_of(".[");
    if (cut == std::string::npos) break;
    f.resize(cut);
  }
  auto where = file.Locate(rel);
  return (where ? *where : file.path) + ": " + rel + ": " + rest;
}

}  // namespace dyt::cli
