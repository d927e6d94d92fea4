#include "scheduler/rocks_status.h"

namespace dyt {

Status FromRocksStatus(const rocksdb::Status& status, const std::string& what) {
  if (status.ok()) return Status::Ok();
  StatusCode code = StatusCode::kInternal;
  if (status.IsCorruption()) {
    code = StatusCode::kDataLoss;
  } else if (status.IsNotFound()) {
    code = StatusCode::kNotFound;
  } else if (status.IsBusy() || status.IsTimedOut() || status.IsTryAgain()) {
    code = StatusCode::kUnavailable;
  } else if (status.IsNotSupported()) {
    code = StatusCode::kUnimplemented;
  }
  return Status(code, what + ": " + status.ToString());
}

}  // namespace dyt
