#include "scheduler/state_keys.h"

#include <cstdio>

namespace dyt {
namespace {

constexpr std::string_view kJobIdPrefix = "job-";
constexpr size_t kJobIdDigits = 12;
constexpr std::string_view kPageTokenVersion = "v1:";

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

Status CheckRecordId(std::string_view field, std::string_view id) {
  if (id.empty()) return InvalidArgument(std::string(field) + ": must not be empty");
  if (id.size() > kMaxRecordIdBytes) {
    return InvalidArgument(std::string(field) + ": longer than " +
                           std::to_string(kMaxRecordIdBytes) + " bytes");
  }
  if (id.find('\0') != std::string_view::npos) {
    return InvalidArgument(std::string(field) + ": must not contain a NUL byte");
  }
  return Status::Ok();
}

std::string FormatJobId(uint64_t number) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%0*llu", static_cast<int>(kJobIdDigits),
                static_cast<unsigned long long>(number));
  return std::string(kJobIdPrefix) + digits;
}

std::optional<uint64_t> ParseJobId(std::string_view id) {
  if (id.size() < kJobIdPrefix.size() + kJobIdDigits ||
      id.substr(0, kJobIdPrefix.size()) != kJobIdPrefix) {
    return std::nullopt;
  }
  const std::string_view digits = id.substr(kJobIdPrefix.size());
  if (digits.size() > 19) return std::nullopt;  // beyond what uint64 holds without overflow
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (FormatJobId(value) != id) return std::nullopt;  // e.g. too many leading zeros
  return value;
}

std::string EncodeBigEndian64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

std::string EncodeBigEndian32(uint32_t value) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

std::optional<uint64_t> DecodeBigEndian64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t value = 0;
  for (unsigned char c : bytes) value = (value << 8) | c;
  return value;
}

std::string JobPrefix(std::string_view job_id) {
  std::string key(job_id);
  key.push_back('\0');
  return key;
}

std::string JobPrefixEnd(std::string_view job_id) {
  std::string key(job_id);
  key.push_back('\1');
  return key;
}

std::string JobEventKey(std::string_view job_id, uint64_t seq) {
  return JobPrefix(job_id) + EncodeBigEndian64(seq);
}

std::string CheckpointKey(std::string_view job_id, int64_t step) {
  return JobPrefix(job_id) + EncodeBigEndian64(static_cast<uint64_t>(step));
}

std::optional<uint64_t> JobKeySuffixNumber(std::string_view key, std::string_view job_id) {
  const size_t prefix = job_id.size() + 1;
  if (key.size() != prefix + 8 || key.substr(0, job_id.size()) != job_id ||
      key[job_id.size()] != '\0') {
    return std::nullopt;
  }
  return DecodeBigEndian64(key.substr(prefix));
}

std::string RendezvousAttemptPrefix(std::string_view job_id, int32_t attempt) {
  return JobPrefix(job_id) + EncodeBigEndian32(static_cast<uint32_t>(attempt));
}

std::string RendezvousAttemptEnd(std::string_view job_id, int32_t attempt) {
  // Attempts are >= 0, so attempt + 1 fits in the 4 bytes and sorts right after `attempt`.
  return JobPrefix(job_id) + EncodeBigEndian32(static_cast<uint32_t>(attempt) + 1);
}

std::string RendezvousKey(std::string_view job_id, int32_t attempt, std::string_view key) {
  return RendezvousAttemptPrefix(job_id, attempt) + std::string(key);
}

std::string RequestIndexKey(std::string_view client_request_id) {
  return "request/" + std::string(client_request_id);
}

std::string ScopedRequestId(std::string_view owner, std::string_view client_request_id) {
  return std::string(owner) + "/" + std::string(client_request_id);
}

std::string EncodeJobPageToken(std::string_view last_job_id) {
  return Hex(std::string(kPageTokenVersion) + std::string(last_job_id));
}

StatusOr<std::string> DecodeJobPageToken(std::string_view token) {
  const Status bad = InvalidArgument("page_token: not a token that ListJobs returned");
  if (token.size() % 2 != 0) return bad;
  std::string bytes;
  bytes.reserve(token.size() / 2);
  for (size_t i = 0; i < token.size(); i += 2) {
    const int hi = HexValue(token[i]);
    const int lo = HexValue(token[i + 1]);
    if (hi < 0 || lo < 0) return bad;
    bytes.push_back(static_cast<char>(hi * 16 + lo));
  }
  if (bytes.size() <= kPageTokenVersion.size() ||
      std::string_view(bytes).substr(0, kPageTokenVersion.size()) != kPageTokenVersion) {
    return bad;
  }
  std::string id = bytes.substr(kPageTokenVersion.size());
  if (!CheckRecordId("page_token", id).ok()) return bad;
  return id;
}

}  // namespace dyt
