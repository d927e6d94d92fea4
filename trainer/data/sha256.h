// SHA-256 digests as lowercase hex, through OpenSSL's EVP API.
//
// The data module names a tokenizer by the SHA-256 of its model file's bytes, so a shard can
// record which tokenizer produced it and the loader can refuse shards from another one.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace dyt {

// The 64-character lowercase hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// The 64-character lowercase hex SHA-256 of the file's contents (read in chunks, so any size).
StatusOr<std::string> Sha256FileHex(const std::string& path);

}  // namespace dyt
