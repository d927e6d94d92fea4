#include "trainer/data/shard_format.h"

#include <algorithm>
#include <cstring>

#include "common/sha256.h"

namespace dyt {
namespace {

// Explicit little-endian field access, so the header layout never depends on the host.
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

constexpr size_t kVersionOffset = 8;
constexpr size_t kTokenBytesOffset = 12;
constexpr size_t kCountOffset = 16;
constexpr size_t kVocabOffset = 24;
constexpr size_t kHeaderSizeOffset = 28;
constexpr size_t kTokenizerIdOffset = 32;

}  // namespace

StatusOr<ShardFormat> ParseShardFormat(std::string_view name) {
  if (name == "auto") return ShardFormat::kAuto;
  if (name == "dyt") return ShardFormat::kDyt;
  if (name == "llmc") return ShardFormat::kLlmc;
  if (name == "raw_u16") return ShardFormat::kRawU16;
  if (name == "raw_u32") return ShardFormat::kRawU32;
  return InvalidArgument("unknown shard format '" + std::string(name) +
                         "' (expected auto, dyt, llmc, raw_u16 or raw_u32)");
}

const char* ShardFormatName(ShardFormat format) {
  switch (format) {
    case ShardFormat::kAuto:
      return "auto";
    case ShardFormat::kDyt:
      return "dyt";
    case ShardFormat::kLlmc:
      return "llmc";
    case ShardFormat::kRawU16:
      return "raw_u16";
    case ShardFormat::kRawU32:
      return "raw_u32";
  }
  return "unknown";
}

uint32_t TokenBytesForVocab(uint64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

bool IsValidTokenizerId(std::string_view id) { return id.empty() || IsSha256Hex(id); }

uint64_t Fnv1a64(std::span<const uint8_t> bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string EncodeDytHeader(const DytShardHeader& header) {
  uint8_t buf[kDytHeaderBytes] = {};
  std::memcpy(buf, kDytShardMagic.data(), kDytShardMagic.size());
  Put32(buf + kVersionOffset, header.version);
  Put32(buf + kTokenBytesOffset, header.token_bytes);
  Put64(buf + kCountOffset, header.token_count);
  Put32(buf + kVocabOffset, header.vocab_size);
  Put32(buf + kHeaderSizeOffset, kDytHeaderBytes);
  std::memcpy(buf + kTokenizerIdOffset, header.tokenizer_id.data(),
              std::min(header.tokenizer_id.size(), kTokenizerIdChars));
  Put64(buf + kDytChecksumOffset, Fnv1a64({buf, kDytChecksumOffset}));
  return std::string(reinterpret_cast<const char*>(buf), kDytHeaderBytes);
}

StatusOr<DytShardHeader> DecodeDytHeader(std::span<const uint8_t> bytes, const std::string& path) {
  const std::string where = "shard " + path + ": ";
  if (bytes.size() < kDytHeaderBytes) {
    return DataLoss(where + "truncated: " + std::to_string(bytes.size()) +
                    " bytes, shorter than the " + std::to_string(kDytHeaderBytes) + "-byte header");
  }
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kDytShardMagic.data(), kDytShardMagic.size()) != 0) {
    return DataLoss(where + "not a dyt shard (bad magic; expected \"DYTSHARD\")");
  }
  const uint64_t stored = Get64(p + kDytChecksumOffset);
  if (stored != Fnv1a64({p, kDytChecksumOffset})) {
    return DataLoss(where + "corrupt header (checksum mismatch)");
  }
  DytShardHeader h;
  h.version = Get32(p + kVersionOffset);
  if (h.version != kDytShardVersion) {
    return DataLoss(where + "unsupported shard version " + std::to_string(h.version) +
                    " (this build reads version " + std::to_string(kDytShardVersion) + ")");
  }
  h.token_bytes = Get32(p + kTokenBytesOffset);
  if (h.token_bytes != 2 && h.token_bytes != 4) {
    return DataLoss(where + "corrupt header (token width " + std::to_string(h.token_bytes) +
                    ", expected 2 or 4)");
  }
  h.token_count = Get64(p + kCountOffset);
  h.vocab_size = Get32(p + kVocabOffset);
  if (Get32(p + kHeaderSizeOffset) != kDytHeaderBytes) {
    return DataLoss(where + "corrupt header (header size " +
                    std::to_string(Get32(p + kHeaderSizeOffset)) + ", expected " +
                    std::to_string(kDytHeaderBytes) + ")");
  }
  const char* id = reinterpret_cast<const char*>(p + kTokenizerIdOffset);
  const bool no_id = std::all_of(id, id + kTokenizerIdChars, [](char c) { return c == 0; });
  h.tokenizer_id = no_id ? "" : std::string(id, kTokenizerIdChars);
  if (!IsValidTokenizerId(h.tokenizer_id)) {
    return DataLoss(where + "corrupt header (tokenizer id is not hex)");
  }
  return h;
}

}  // namespace dyt
