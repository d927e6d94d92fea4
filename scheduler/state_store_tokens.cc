// StateStore: bearer token records in the metadata column family ("token/<sha256 hex>").
#include "common/sha256.h"
#include "scheduler/rocks_status.h"
#include "scheduler/state_store.h"

namespace dyt {
namespace {

constexpr std::string_view kTokenPrefix = "token/";

Status CheckHash(const std::string& hash) {
  if (!IsSha256Hex(hash)) return InvalidArgument("token hash: must be 64 lowercase hex digits");
  return Status::Ok();
}

}  // namespace

Status StateStore::PutToken(const std::string& token_hash, const v1::TokenInfo& info) {
  DYT_RETURN_IF_ERROR(CheckHash(token_hash));
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocksStatus(db_->Put(options, metadata_, std::string(kTokenPrefix) + token_hash,
                                  info.SerializeAsString()),
                         "state store " + path_ + ": put token " + info.id());
}

StatusOr<v1::TokenInfo> StateStore::GetToken(const std::string& token_hash) const {
  DYT_RETURN_IF_ERROR(CheckHash(token_hash));
  v1::TokenInfo info;
  DYT_RETURN_IF_ERROR(
      GetMessage(metadata_, std::string(kTokenPrefix) + token_hash, &info, "token"));
  return info;
}

StatusOr<std::vector<std::pair<std::string, v1::TokenInfo>>> StateStore::ListTokens() const {
  std::vector<std::pair<std::string, v1::TokenInfo>> tokens;
  const std::string lower(kTokenPrefix);
  std::string upper = lower;
  upper.back() = static_cast<char>(upper.back() + 1);
  DYT_RETURN_IF_ERROR(Scan(
      metadata_, lower, upper, false, [&](std::string_view key, std::string_view value, bool*) {
        v1::TokenInfo info;
        if (!info.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          return DataLoss("metadata/token: a value does not parse as dyt.v1.TokenInfo");
        }
        tokens.emplace_back(std::string(key.substr(kTokenPrefix.size())), std::move(info));
        return Status::Ok();
      }));
  return tokens;
}

}  // namespace dyt
