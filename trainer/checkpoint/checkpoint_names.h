// Names inside an artifact store: step directories, the files of a checkpoint, temp names.
//
// A store is a directory holding one job's checkpoints:
//
//   store/
//     step-00000100/            one checkpoint (docs/checkpoints.md describes its files)
//     step-00000200/
//     latest                    "step-00000200\n": the last checkpoint committed
//     .tmp-step-00000300-4242/  a checkpoint being written by process 4242 (or left by it)
//
// Entries starting with ".tmp-" or ".old-" and ending in "-<pid>" belong to one writer
// process; they are never read as checkpoints, and retention removes them once that process
// is gone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dyt {

// Version of the on-disk layout (manifest.json and state.json both record it). Bump it when
// a reader of the old version could misread the new one.
inline constexpr int kCheckpointFormatVersion = 1;
// The "format" field of manifest.json and state.json.
inline constexpr const char* kCheckpointFormatName = "dyt-checkpoint";

inline constexpr const char* kModelFile = "model.safetensors";
inline constexpr const char* kOptimizerFile = "optimizer.safetensors";
inline constexpr const char* kStateFile = "state.json";
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kLatestFile = "latest";

// Optimizer tensor names: AdamW's first and second moments of parameter `name`, named after
// PyTorch's AdamW state keys.
std::string ExpAvgName(const std::string& param_name);
std::string ExpAvgSqName(const std::string& param_name);

// "step-00000123". Steps past 8 digits simply get more digits.
std::string StepDirName(int64_t step);
// The step of a canonical step directory name (exactly what StepDirName produces), else none.
std::optional<int64_t> ParseStepDirName(std::string_view name);

// The entry names ".tmp-<what>-<pid>" and ".old-<what>-<pid>" of the calling process.
std::string TempName(const std::string& what);
std::string OldName(const std::string& what);
// The writer pid of a ".tmp-...-<pid>" or ".old-...-<pid>" entry name, else none.
std::optional<long> ParseWriterPid(std::string_view name);

// The last path component ("step-00000123" for "/store/step-00000123/"), for messages.
std::string BaseName(const std::string& path);
// `dir` + "/" + `name`, without doubling a trailing slash.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace dyt
