// Job spec files: the YAML a user writes for `dytctl submit`, read into a v1::JobSpec.
//
// The file's sections mirror JobSpec field for field (name, owner, priority, max_restarts,
// model, data, optimizer, train, resources, checkpoint; the fields inside each are the proto's
// field names), so the server's error paths ("spec.train.batch_size") map back to lines of the
// file. The reader walks the proto descriptor, so a field added to job.proto is accepted
// without changes here.
//
// Rules:
// - Unknown keys are rejected by name with file:line:column ("job.yaml:7:3: train.batchsize:
//   unknown field (known: steps, batch_size, ...)"); so are duplicate keys.
// - Values must have the field's type: "job.yaml:12:15: train.batch_size: must be an integer
//   (got 'eight')". Repeated string fields (data.train_paths, data.val_paths) take one string
//   or a list.
// - owner defaults to `default_owner` (dytctl passes $USER) when the file has none.
// - Relative data paths (data.train_paths, data.val_paths, data.tokenizer_path) are resolved
//   against `base_dir` (the job file's directory), because the scheduler needs absolute paths
//   and a job file should mean the same thing whatever directory it is submitted from.
//   Absolute paths and globs are kept as they are (a relative glob becomes an absolute glob).
// - YAML syntax errors are "job.yaml:3:5: YAML syntax error: <what>".
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/status.h"
#include "dyt/v1/job.pb.h"

namespace dyt::cli {

struct SourcePosition {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

struct JobSpecParseOptions {
  std::string default_owner;  // used when the file sets no owner
  std::string base_dir;       // relative data paths are resolved against it; empty: the cwd
};

// A parsed job spec and where each field came from in its file.
struct JobSpecFile {
  std::string path;  // as shown in messages (the path the user gave)
  v1::JobSpec spec;
  // Field path without "spec." ("train.batch_size", "data.train_paths[1]", "model") to the
  // position of its key (or list element) in the file.
  std::map<std::string, SourcePosition> positions;
  // Field path to the command-line option that last set it ("--set train.steps=0",
  // "--steps 0"); such a field is blamed on the option, not on the file.
  std::map<std::string, std::string> overrides;

  // "job.yaml:12" for the field or, failing that, its nearest enclosing field that the file
  // has ("data.train_paths[3]" -> "data.train_paths" -> "data"); nullopt when none.
  std::optional<std::string> Locate(const std::string& field) const;
};

// Parses YAML `text`; `display_path` names the file in messages.
StatusOr<JobSpecFile> ParseJobSpecYaml(const std::string& text, const std::string& display_path,
                                       const JobSpecParseOptions& options);

// Reads and parses the file at `path`; base_dir defaults to the file's directory.
StatusOr<JobSpecFile> LoadJobSpecFile(const std::string& path, const std::string& default_owner);

// Applies `--set key=value` ("train.steps=100", "model.norm=rmsnorm", "data.train_paths=a,b"
// is one path "a,b"; use YAML flow syntax "[a, b]" for a list). The value is read as a YAML
// scalar or flow list with the same type rules as the file; relative data paths are resolved
// against the current directory. Errors name the option: "--set train.stepz=1: unknown field".
Status ApplyJobSpecOverride(const std::string& assignment, JobSpecFile& file);

// Records that `option` set `field` (for flags like --steps that set a field directly).
void NoteOverride(JobSpecFile& file, const std::string& field, const std::string& option);

// Rewrites a server message "spec.train.batch_size: must be >= 1 (got 0)" as
// "job.yaml:12: train.batch_size: must be >= 1 (got 0)" when the field is in the file, and
// "job.yaml: train.batch_size: ..." when it is not, and "--steps 0: train.steps: ..." when a
// command-line option set it. Other messages are returned unchanged.
std::string AttributeServerError(const JobSpecFile& file, const std::string& message);

}  // namespace dyt::cli
