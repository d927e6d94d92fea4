// Facts about job states that the store and the scheduler share.
#pragma once

#include "dyt/v1/job.pb.h"

namespace dyt {

// SUCCEEDED, FAILED and CANCELLED: the job will never run again. A restart reloads only the
// jobs that are not terminal.
inline bool IsTerminalJobState(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

}  // namespace dyt
