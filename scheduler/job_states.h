// Facts about job states that the store and the scheduler share.
#pragma once

#include <string>

#include "dyt/v1/job.pb.h"

namespace dyt {

// SUCCEEDED, FAILED and CANCELLED: the job will never run again. A restart reloads only the
// jobs that are not terminal.
inline bool IsTerminalJobState(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

// `reason` with `more` at the end of its first line: a failed rank's reason goes on with its
// stderr tail, after which an addition ("; max_restarts 2 reached") would stand on a line of
// its own.
inline std::string OnFirstLine(const std::string& reason, const std::string& more) {
  const size_t nl = reason.find('\n');
  if (nl == std::string::npos) return reason + more;
  return reason.substr(0, nl) + more + reason.substr(nl);
}

// `reason` on one line, for the service log: its first line, and when more follows (a rank's
// output tail) the last non-empty line of that, which usually says what went wrong.
inline std::string ReasonForLog(const std::string& reason) {
  const size_t nl = reason.find('\n');
  if (nl == std::string::npos) return reason;
  size_t end = reason.find_last_not_of("\n ");
  if (end == std::string::npos || end <= nl) return reason.substr(0, nl);
  const size_t begin = reason.rfind('\n', end) + 1;
  return reason.substr(0, nl) + " | last output: " + reason.substr(begin, end + 1 - begin);
}

}  // namespace dyt
