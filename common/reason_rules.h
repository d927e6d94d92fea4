// The rules for a reason an operator or user gives (dytctl cancel --reason, dytctl workers drain
// --reason): it is stored in job events, shown in tables and written to logs, so it must not
// carry terminal escapes or forge log lines.
#pragma once

#include <string>
#include <string_view>

#include "common/job_spec_limits.h"

namespace dyt {

// What is wrong with `reason`, or "" when nothing is: at most kMaxReasonLength bytes, no control
// characters (newlines and tabs only where `multiline`).
inline std::string ReasonRule(std::string_view reason, bool multiline) {
  if (reason.size() > static_cast<size_t>(JobSpecLimits::kMaxReasonLength)) {
    return "at most " + std::to_string(JobSpecLimits::kMaxReasonLength) + " bytes (got " +
           std::to_string(reason.size()) + ")";
  }
  for (char c : reason) {
    const auto u = static_cast<unsigned char>(c);
    if (multiline && (c == '\n' || c == '\t')) continue;
    if (u < 0x20 || u == 0x7f) {
      return multiline ? "no control characters but newlines and tabs"
                       : "one line of text, without control characters";
    }
  }
  return "";
}

}  // namespace dyt
