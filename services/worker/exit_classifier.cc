#include "services/worker/exit_classifier.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>

namespace dyt::worker {

const char* StopCauseName(StopCause cause) {
  switch (cause) {
    case StopCause::kNone:
      return "none";
    case StopCause::kCancel:
      return "cancel";
    case StopCause::kPreempt:
      return "preempt";
    case StopCause::kStale:
      return "stale";
    case StopCause::kOrphaned:
      return "scheduler unreachable";
    case StopCause::kShutdown:
      return "worker shutdown";
    case StopCause::kStalled:
      return "stalled";
  }
  return "unknown";
}

StopCause StopCauseFromReason(v1::StopJob::Reason reason) {
  switch (reason) {
    case v1::StopJob::PREEMPT:
      return StopCause::kPreempt;
    case v1::StopJob::STALE:
      return StopCause::kStale;
    default:
      return StopCause::kCancel;
  }
}

v1::RankUpdate ClassifyExit(const dist::ChildOutcome& outcome, const ExitContext& context) {
  v1::RankUpdate u;
  u.set_kind(v1::RankUpdate::EXITED);
  std::string how;
  if (outcome.exited) {
    u.set_exit_code(outcome.exit_code);
    how = "exited with code " + std::to_string(outcome.exit_code);
    if (outcome.exit_code == dist::kExitPreempted) how += " after a checkpoint";
  } else {
    u.set_signal(outcome.term_signal);
    const char* name = ::strsignal(outcome.term_signal);
    how = "killed by signal " + std::to_string(outcome.term_signal) +
          (name != nullptr ? std::string(" (") + name + ")" : std::string());
  }
  if (outcome.exited && outcome.exit_code == 0) {
    u.set_exit(v1::RankUpdate::SUCCEEDED);
    u.set_reason(how);
  } else if (context.stop == StopCause::kStalled) {
    u.set_exit(v1::RankUpdate::FAILED);
    u.set_reason("hung: no output or event for " + std::to_string(context.stall_timeout_s) +
                 " s (stall_timeout_s), stopped: " + how);
  } else if (context.stop != StopCause::kNone) {
    u.set_exit(v1::RankUpdate::STOPPED);
    u.set_reason(std::string("stopped (") + StopCauseName(context.stop) + "): " + how);
    u.set_stopped_by_worker(context.stop == StopCause::kOrphaned ||
                            context.stop == StopCause::kShutdown);
  } else if (context.failed_peer_rank >= 0 && outcome.signalled_by_launcher) {
    u.set_exit(v1::RankUpdate::STOPPED);
    u.set_reason("stopped after rank " + std::to_string(context.failed_peer_rank) +
                 " failed: " + how);
  } else {
    u.set_exit(v1::RankUpdate::FAILED);
    u.set_reason(context.last_error.empty() ? how : how + ": " + context.last_error);
  }
  return u;
}

std::string LastErrorLine(const std::vector<std::string>& lines) {
  auto looks_like_error = [](const std::string& line) {
    std::istringstream in(line);
    std::string time, level;
    in >> time >> level;
    if (level == "E" || level == "C") return true;
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lower.find("error") != std::string::npos;
  };
  std::string chosen;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (looks_like_error(*it)) {
      chosen = *it;
      break;
    }
  }
  if (chosen.empty()) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      if (!it->empty()) {
        chosen = *it;
        break;
      }
    }
  }
  return chosen.substr(0, 300);
}

}  // namespace dyt::worker
