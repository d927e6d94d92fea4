// SHA-256 digests as lowercase hex, through OpenSSL's EVP API.
//
// Used by the data module (a tokenizer is named by the SHA-256 of its model file, so a shard
// records which tokenizer produced it), checkpoint manifests, and checkpoint downloads.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dyt {

// The 64-character lowercase hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// The 64-character lowercase hex SHA-256 of the file's contents (read in chunks, so any size).
StatusOr<std::string> Sha256FileHex(const std::string& path);

// True when `s` is what Sha256Hex returns: 64 lowercase hex characters. (Inline: the shard
// header's fuzz target links no OpenSSL.)
inline bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace dyt
