// Helpers shared by the dytctl command implementations (not part of the library's API).
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "common/status.h"
#include "dyt/v1/job.pb.h"
#include "services/cli/commands.h"

namespace dyt::cli {

// Prints "dytctl: <message>" to ctx.err and returns kExitError.
inline int Fail(const CommandContext& ctx, const Status& status) {
  *ctx.err << "dytctl: " << status.message() << "\n";
  return kExitError;
}
inline int Fail(const CommandContext& ctx, const std::string& message) {
  *ctx.err << "dytctl: " << message << "\n";
  return kExitError;
}
// The same for a mistake on the command line: returns kExitUsage.
inline int FailUsage(const CommandContext& ctx, const std::string& message) {
  *ctx.err << "dytctl: " << message << "\n";
  return kExitUsage;
}

inline int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline bool IsTerminal(v1::JobState s) {
  return s == v1::SUCCEEDED || s == v1::FAILED || s == v1::CANCELLED;
}

// "120/300" or "-" before the first step.
std::string StepsText(const v1::Job& job);

}  // namespace dyt::cli
