// File operations that survive a crash or power loss at any point.
//
// A rename is atomic, but only durable once the directory holding it is fsynced, and a file's
// bytes are only durable once the file is fsynced. The checkpoint store builds every commit
// from these few steps so the order (data, then name) is written down once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dyt {

// Creates or truncates `path`, writes `bytes`, fsyncs and closes it. Not atomic by itself.
Status WriteFileSynced(const std::string& path, std::string_view bytes);

// Replaces `path` atomically and durably: writes "<dir>/.tmp-<name>-<pid>", fsyncs it,
// renames it over `path`, fsyncs the directory. Readers see the old or the new content.
Status ReplaceFileAtomically(const std::string& path, std::string_view bytes);

// fsyncs a directory, making renames and creations inside it durable.
Status FsyncDir(const std::string& dir);

// Creates `dir` (and missing parents) if needed; when it had to be created, its parent is
// fsynced so the new directory itself survives a crash.
Status EnsureDir(const std::string& dir);

// Reads a whole file of at most `max_bytes` (a guard against reading a huge file by mistake).
StatusOr<std::string> ReadFileToString(const std::string& path, int64_t max_bytes);

// Removes a file or a directory tree; a missing path is not an error.
Status RemoveTree(const std::string& path);

}  // namespace dyt
