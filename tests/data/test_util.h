// Helpers shared by the data tests: a scratch directory and raw file writers, so each test
// can build exactly the (possibly broken) files it needs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dyt::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& bytes);
std::string ReadFile(const std::string& path);

// An llm.c shard: 256 int32 header (magic, version, count) then tokens of the magic's width.
void WriteLlmcShard(const std::string& path, int32_t magic, int32_t version,
                    const std::vector<uint32_t>& tokens);
// A headerless little-endian array of 2- or 4-byte tokens (nanoGPT's train.bin).
void WriteRawShard(const std::string& path, int token_bytes, const std::vector<uint32_t>& tokens);

}  // namespace dyt::testing
