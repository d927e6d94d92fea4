// How a trainer's end is reported (RankUpdate EXITED): exit kind, code or signal, reason.
//
//   exit code 0                                   -> SUCCEEDED ("exited with code 0")
//   we asked it to stop (cancel, preempt, stale,
//   orphaned, worker shutdown)                    -> STOPPED; exit code 3 means it checkpointed
//   stopped by the launcher after a local peer
//   failed                                        -> STOPPED ("stopped after rank N failed: ...")
//   stopped as hung (stall_timeout_s)             -> FAILED ("hung: no output or event for N s
//   ...") anything else                                 -> FAILED: "exited with code 1: <last
//   error>"
//                                                    or "killed by signal 9 (Killed)"
#pragma once

#include <string>

#include "dyt/v1/worker_service.pb.h"
#include "trainer/dist/launcher.h"

namespace dyt::worker {

// Why the worker stopped a rank (kNone: it did not).
// kStalled: the worker's watchdog (JobSpec.stall_timeout_s) stopped it as hung: a failure.
enum class StopCause { kNone, kCancel, kPreempt, kStale, kOrphaned, kShutdown, kStalled };

const char* StopCauseName(StopCause cause);
StopCause StopCauseFromReason(v1::StopJob::Reason reason);

struct ExitContext {
  StopCause stop = StopCause::kNone;
  int failed_peer_rank = -1;  // a local rank whose failure made the launcher stop this one
  std::string last_error;     // the trainer's "error" event, or its last error log line
  int stall_timeout_s = 0;    // with kStalled: the silence it was stopped after
};

// The EXITED update's exit, exit_code, signal and reason (job, attempt, rank and the stderr
// tail are the caller's).
v1::RankUpdate ClassifyExit(const dist::ChildOutcome& outcome, const ExitContext& context);

// The last line of `lines` that looks like an error ("E"/"C" spdlog level, or containing
// "error"), else the last non-empty line; at most 300 characters.
std::string LastErrorLine(const std::vector<std::string>& lines);

}  // namespace dyt::worker
