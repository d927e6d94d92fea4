// A RocksDB merge operator keeping the maximum of 8-byte big-endian unsigned integers.
//
// The job-number high-water mark is written with Merge(max) in the same WriteBatch as each new
// job. Concurrent submissions commit in any order, so a plain Put could leave a smaller number
// last; with max the stored value is the highest number any committed batch carried, whatever
// the order, and a restart never hands out a number twice.
#pragma once

#include <rocksdb/merge_operator.h>

#include <memory>

namespace dyt {

std::shared_ptr<rocksdb::MergeOperator> NewUInt64MaxOperator();

}  // namespace dyt
