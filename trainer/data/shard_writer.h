// Writes a dyt token shard (layout in shard_format.h and docs/data.md).
//
// Tokens stream in through Append; Finish writes the header, fsyncs, and renames the
// temporary "<path>.tmp" to <path>, so a reader never sees a half-written shard under the
// final name, and a writer that dies or is destroyed unfinished leaves no shard behind.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace dyt {

class ShardWriter {
 public:
  // `vocab_size` (>= 1) picks the token width (uint16 up to 65536, else uint32) and bounds
  // every token; `tokenizer_id` is the tokenizer's id() or "" when unknown.
  static StatusOr<std::unique_ptr<ShardWriter>> Create(const std::string& path, uint32_t vocab_size,
                                                       const std::string& tokenizer_id);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends tokens; each must be in [0, vocab_size) (INVALID_ARGUMENT names the first bad one).
  Status Append(std::span<const int32_t> tokens);
  // Writes the header and publishes the shard under its final name. Call once.
  Status Finish();

  uint64_t token_count() const { return count_; }

 private:
  ShardWriter(std::string path, int fd, uint32_t vocab_size, std::string tokenizer_id);

  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  uint32_t vocab_size_;
  uint32_t token_bytes_;
  std::string tokenizer_id_;
  uint64_t count_ = 0;
  std::vector<uint8_t> buffer_;
};

// Writes `tokens` as one shard: Create, Append, Finish.
Status WriteShard(const std::string& path, std::span<const int32_t> tokens, uint32_t vocab_size,
                  const std::string& tokenizer_id);

}  // namespace dyt
