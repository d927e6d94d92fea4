// Turning a rocksdb::Status into a dyt::Status that names what failed.
#pragma once

#include <rocksdb/status.h>

#include <string>

#include "common/status.h"

namespace dyt {

// "<what>: <RocksDB's message>" with a code by kind: Corruption -> DATA_LOSS (a damaged store
// is data loss, not a bug), NotFound -> NOT_FOUND, Busy / TimedOut / TryAgain -> UNAVAILABLE,
// NotSupported -> UNIMPLEMENTED, anything else (I/O errors, invalid batches) -> INTERNAL.
// An OK rocksdb::Status gives an OK Status.
Status FromRocksStatus(const rocksdb::Status& status, const std::string& what);

}  // namespace dyt
