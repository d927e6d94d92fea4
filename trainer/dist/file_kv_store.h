// FileKvStore: a KvStore in a directory that every rank can see (local disk for one machine,
// NFS or Lustre for several). One file per key.
//
// Set writes the value to a hidden temporary file in the same directory, fsyncs it and
// renames it over the key's file: rename within a directory is atomic on POSIX file systems
// (NFS included), so a reader sees the old file or the whole new one. Get polls for the file
// with exponential backoff (1 ms doubling to 50 ms) until the deadline.
#pragma once

#include <memory>
#include <string>

#include "trainer/dist/kv_store.h"

namespace dyt::dist {

class FileKvStore final : public KvStore {
 public:
  // Opens the store in `dir`, creating the directory (and its parents) if missing.
  static StatusOr<std::unique_ptr<FileKvStore>> Open(const std::string& dir);

  Status Set(const std::string& key, const std::string& value) override;
  StatusOr<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;

  const std::string& dir() const { return dir_; }

 private:
  explicit FileKvStore(std::string dir) : dir_(std::move(dir)) {}

  // Reads the key's file. NOT_FOUND when it does not exist (yet).
  StatusOr<std::string> TryRead(const std::string& key) const;

  std::string dir_;
};

}  // namespace dyt::dist
