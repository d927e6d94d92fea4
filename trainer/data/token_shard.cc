#include "trainer/data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <span>

#include "common/same_file.h"

namespace dyt {
namespace {

// Tokens are read in place from the mapping; every supported format is little-endian.
static_assert(std::endian::native == std::endian::little, "dyt shards assume a little-endian host");

int32_t LoadI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The shared size check: catches truncation (the common failure of a copy or a full disk)
// and trailing garbage alike.
Status CheckSize(const std::string& path, uint64_t file_bytes, uint64_t header_bytes,
                 uint64_t count, uint64_t token_bytes) {
  const uint64_t expected = header_bytes + count * token_bytes;
  if (file_bytes < expected) {
    return DataLoss("shard " + path + ": truncated: header says " + std::to_string(count) +
                    " tokens (" + std::to_string(expected) + " bytes) but the file has " +
                    std::to_string(file_bytes) + " bytes");
  }
  if (file_bytes > expected) {
    return DataLoss("shard " + path + ": corrupt: " + std::to_string(file_bytes - expected) +
                    " bytes after the " + std::to_string(count) + " tokens the header declares");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<TokenShard>> TokenShard::Open(const std::string& path,
                                                       ShardFormat format) {
  std::unique_ptr<TokenShard> shard(new TokenShard());
  DYT_RETURN_IF_ERROR(shard->Map(path, format));
  return shard;
}

TokenShard::~TokenShard() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

Status TokenShard::Map(const std::string& path, ShardFormat format) {
  path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("shard not found: " + path + RelativeNote(path));
    return IoError("cannot open shard", path, errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot stat shard", path, err);
  }
  map_bytes_ = static_cast<size_t>(st.st_size);
  if (map_bytes_ > 0) {
    map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      const int err = errno;
      ::close(fd);
      return IoError("cannot mmap shard", path, err);
    }
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  const uint8_t* bytes = static_cast<const uint8_t*>(map_);
  const uint64_t n = map_bytes_;

  if (format == ShardFormat::kAuto) {
    if (n >= kDytShardMagic.size() &&
        std::memcmp(bytes, kDytShardMagic.data(), kDytShardMagic.size()) == 0) {
      format = ShardFormat::kDyt;
    } else if (n >= 4 && (LoadI32(bytes) == kLlmcMagicGpt2 || LoadI32(bytes) == kLlmcMagicLlama3)) {
      format = ShardFormat::kLlmc;
    } else {
      return InvalidArgument("shard " + path +
                             ": unrecognized format (no DYTSHARD or llm.c magic); a "
                             "headerless nanoGPT .bin needs format: raw_u16 (or raw_u32)");
    }
  }
  format_ = format;

  uint64_t header_bytes = 0;
  switch (format) {
    case ShardFormat::kDyt: {
      DYT_ASSIGN_OR_RETURN(DytShardHeader h, DecodeDytHeader({bytes, n}, path));
      token_bytes_ = static_cast<int>(h.token_bytes);
      count_ = h.token_count;
      vocab_size_ = h.vocab_size;
      tokenizer_id_ = h.tokenizer_id;
      header_bytes = kDytHeaderBytes;
      break;
    }
    case ShardFormat::kLlmc: {
      if (n < kLlmcHeaderBytes) {
        return DataLoss("shard " + path + ": truncated: " + std::to_string(n) +
                        " bytes, shorter than llm.c's 1024-byte header");
      }
      const int32_t magic = LoadI32(bytes);
      const int32_t version = LoadI32(bytes + 4);
      const int32_t count = LoadI32(bytes + 8);
      if (magic == kLlmcMagicGpt2 && version == 1) {
        token_bytes_ = 2;
      } else if (magic == kLlmcMagicLlama3 && version == 7) {
        token_bytes_ = 4;
      } else {
        return DataLoss("shard " + path + ": not a supported llm.c shard (magic " +
                        std::to_string(magic) + ", version " + std::to_string(version) +
                        "; expected 20240520 v1 or 20240801 v7)");
      }
      if (count < 0) {
        return DataLoss("shard " + path + ": corrupt header (negative token count)");
      }
      count_ = static_cast<uint64_t>(count);
      header_bytes = kLlmcHeaderBytes;
      break;
    }
    case ShardFormat::kRawU16:
    case ShardFormat::kRawU32: {
      token_bytes_ = format == ShardFormat::kRawU16 ? 2 : 4;
      if (n % token_bytes_ != 0) {
        return DataLoss("shard " + path + ": truncated: " + std::to_string(n) +
                        " bytes is not a whole number of " + std::to_string(token_bytes_) +
                        "-byte tokens");
      }
      count_ = n / token_bytes_;
      break;
    }
    case ShardFormat::kAuto:
      return Internal("unreachable");
  }
  DYT_RETURN_IF_ERROR(CheckSize(path, n, header_bytes, count_, token_bytes_));
  tokens_ = bytes + header_bytes;
  return Status::Ok();
}

void TokenShard::Read(uint64_t begin, uint64_t n, int32_t* out) const {
  if (token_bytes_ == 2) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(tokens_) + begin;
    for (uint64_t i = 0; i < n; ++i) out[i] = src[i];
  } else {
    const uint32_t* src = reinterpret_cast<const uint32_t*>(tokens_) + begin;
    for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(src[i]);
  }
}

std::optional<uint64_t> TokenShard::FirstTokenAtLeast(uint64_t limit) const {
  // Chunked max first (vectorises well), then the exact position only in a chunk that fails.
  constexpr uint64_t kChunk = 1 << 16;
  for (uint64_t begin = 0; begin < count_; begin += kChunk) {
    const uint64_t end = std::min(count_, begin + kChunk);
    uint32_t max = 0;
    if (token_bytes_ == 2) {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(tokens_);
      for (uint64_t i = begin; i < end; ++i) max = std::max<uint32_t>(max, p[i]);
    } else {
      const uint32_t* p = reinterpret_cast<const uint32_t*>(tokens_);
      for (uint64_t i = begin; i < end; ++i) max = std::max(max, p[i]);
    }
    if (max < limit) continue;
    for (uint64_t i = begin; i < end; ++i) {
      if ((*this)[i] >= limit) return i;
    }
  }
  return std::nullopt;
}

}  // namespace dyt
