// How long a job has run: what JobSpec.time_limit_s limits, shared by the scheduler (which
// enforces it) and dytctl (which shows it).
#pragma once

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <chrono>

#include "dyt/v1/job.pb.h"

namespace dyt {

// The wall-clock time now to the microsecond (protobuf's TimeUtil::GetCurrentTime has whole
// seconds, too coarse to add up short running spells).
inline google::protobuf::Timestamp PreciseNow() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count());
}

// Seconds `job`'s attempts have been RUNNING by `now`: run_seconds plus the current spell.
inline double RunSeconds(const v1::Job& job, const google::protobuf::Timestamp& now) {
  double seconds = job.run_seconds();
  if (job.has_running_since()) {
    const auto elapsed =
        google::protobuf::util::TimeUtil::DurationToMilliseconds(now - job.running_since());
    seconds += std::max<double>(0, double(elapsed) / 1000.0);
  }
  return seconds;
}

}  // namespace dyt
