// The on-disk layouts of token shards: ours ("dyt"), llm.c's, and headerless raw arrays.
//
// A dyt shard (version 1) is a 256-byte little-endian header followed by the tokens:
//
//   offset size  field
//   0      8     magic "DYTSHARD"
//   8      4     u32 version (1)
//   12     4     u32 token width in bytes: 2 (uint16) when vocab_size <= 65536, else 4 (uint32)
//   16     8     u64 token count
//   24     4     u32 vocab_size of the tokenizer (every token is < vocab_size)
//   28     4     u32 header size in bytes (256): where the tokens start
//   32     64    tokenizer id: lowercase hex SHA-256 of the tokenizer model, or 64 zero bytes
//   96     152   reserved, zero
//   248    8     u64 FNV-1a 64 checksum of bytes [0, 248)
//   256    ...   token_count tokens of the given width
//
// A reader checks the magic, the checksum (a corrupt header), the version, and that the file
// is exactly 256 + count * width bytes (a truncated or over-long file). docs/data.md has more.
//
// llm.c shards: 256 int32 (1024 bytes) header; [0] magic, [1] version, [2] token count;
// magic 20240520 with version 1 holds uint16 tokens (GPT-2), magic 20240801 with version 7
// holds uint32 tokens (LLaMA 3). Raw shards (nanoGPT's train.bin) are bare uint16 or uint32
// arrays with no header, so they can only be chosen explicitly, never detected.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dyt {

enum class ShardFormat {
  kAuto,    // detect dyt or llm.c by magic (raw files have none and are refused)
  kDyt,     // ours
  kLlmc,    // llm.c (either magic)
  kRawU16,  // headerless uint16 (nanoGPT)
  kRawU32,  // headerless uint32
};

// "auto", "dyt", "llmc", "raw_u16", "raw_u32".
StatusOr<ShardFormat> ParseShardFormat(std::string_view name);
const char* ShardFormatName(ShardFormat format);

inline constexpr std::string_view kDytShardMagic = "DYTSHARD";
inline constexpr uint32_t kDytShardVersion = 1;
inline constexpr size_t kDytHeaderBytes = 256;
inline constexpr size_t kDytChecksumOffset = 248;
inline constexpr size_t kTokenizerIdChars = 64;

inline constexpr int32_t kLlmcMagicGpt2 = 20240520;    // version 1, uint16 tokens
inline constexpr int32_t kLlmcMagicLlama3 = 20240801;  // version 7, uint32 tokens
inline constexpr size_t kLlmcHeaderBytes = 256 * sizeof(int32_t);

struct DytShardHeader {
  uint32_t version = kDytShardVersion;
  uint32_t token_bytes = 2;  // 2 or 4
  uint64_t token_count = 0;
  uint32_t vocab_size = 0;
  std::string tokenizer_id;  // 64 lowercase hex characters, or empty for "unknown"
};

// 2 when every id of a vocabulary this size fits uint16, else 4.
uint32_t TokenBytesForVocab(uint64_t vocab_size);

// True for "" and for 64 lowercase hex characters.
bool IsValidTokenizerId(std::string_view id);

// FNV-1a, 64-bit: small, dependency-free, and enough to catch a damaged header.
uint64_t Fnv1a64(std::span<const uint8_t> bytes);

// The header's exact kDytHeaderBytes bytes, checksum included. The header must be valid
// (token_bytes 2 or 4, tokenizer id valid); the writer checks before calling.
std::string EncodeDytHeader(const DytShardHeader& header);

// Parses and checks the first kDytHeaderBytes of a dyt shard: magic, checksum, version,
// token width, header size, tokenizer id. `path` only names the file in messages.
StatusOr<DytShardHeader> DecodeDytHeader(std::span<const uint8_t> bytes, const std::string& path);

}  // namespace dyt
