// A read-only, memory-mapped token shard in any supported layout (see shard_format.h).
//
// Open checks the file's structure (magic, header checksum, size against the token count)
// but not the token values; FirstTokenAtLeast scans for ids outside a vocabulary.
// Readers are immutable after Open and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "trainer/data/shard_format.h"

namespace dyt {

class TokenShard {
 public:
  // `format` kAuto recognises dyt and llm.c shards by their magic. Errors name the file:
  // NOT_FOUND (missing), DATA_LOSS ("truncated", "corrupt header", ...), INVALID_ARGUMENT
  // (unrecognised format).
  static StatusOr<std::unique_ptr<TokenShard>> Open(const std::string& path,
                                                    ShardFormat format = ShardFormat::kAuto);
  ~TokenShard();
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  const std::string& path() const { return path_; }
  ShardFormat format() const { return format_; }  // the resolved format, never kAuto
  uint64_t size() const { return count_; }        // number of tokens
  int token_bytes() const { return token_bytes_; }
  // The tokenizer vocab size recorded in the header; 0 when the format records none.
  uint32_t vocab_size() const { return vocab_size_; }
  // The tokenizer id recorded in the header; "" when unknown.
  const std::string& tokenizer_id() const { return tokenizer_id_; }

  uint32_t operator[](uint64_t i) const {
    return token_bytes_ == 2 ? reinterpret_cast<const uint16_t*>(tokens_)[i]
                             : reinterpret_cast<const uint32_t*>(tokens_)[i];
  }
  // Copies tokens [begin, begin + n) to `out`; the range must lie inside the shard.
  void Read(uint64_t begin, uint64_t n, int32_t* out) const;
  // The position of the first token >= `limit`, if any (reads the whole shard).
  std::optional<uint64_t> FirstTokenAtLeast(uint64_t limit) const;

 private:
  TokenShard() = default;
  Status Map(const std::string& path, ShardFormat format);

  std::string path_;
  ShardFormat format_ = ShardFormat::kAuto;
  int token_bytes_ = 2;
  uint64_t count_ = 0;
  uint32_t vocab_size_ = 0;
  std::string tokenizer_id_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const uint8_t* tokens_ = nullptr;
};

}  // namespace dyt
