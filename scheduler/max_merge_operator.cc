#include "scheduler/max_merge_operator.h"

#include <algorithm>
#include <string>

#include "scheduler/state_keys.h"

namespace dyt {
namespace {

class UInt64MaxOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* logger) const override {
    const auto operand = DecodeBigEndian64(std::string_view(value.data(), value.size()));
    if (!operand) return false;  // RocksDB reports a Corruption status for the key
    uint64_t result = *operand;
    if (existing_value != nullptr) {
      const auto existing =
          DecodeBigEndian64(std::string_view(existing_value->data(), existing_value->size()));
      if (!existing) return false;
      result = std::max(result, *existing);
    }
    *new_value = EncodeBigEndian64(result);
    return true;
  }

  const char* Name() const override { return "dyt.UInt64Max"; }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> NewUInt64MaxOperator() {
  return std::make_shared<UInt64MaxOperator>();
}

}  // namespace dyt
