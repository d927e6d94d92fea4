// One JSON line of dyt-train's events (docs/trainer.md "Events") -> what the worker reports.
//
//   step  -> Progress (step, steps, loss, lr, grad_norm, tokens_per_s, alpha_min/mean/max)
//   eval  -> Progress (step, val_loss)
//   checkpoint -> CheckpointRecord (step, path = dir, files, total_bytes = bytes, loss)
//   error -> the message (the reason of a failed rank)
//   anything else: kind kOther (start, resumed, stopped, done, ...), kept by name.
// Progress events update a running snapshot (ProgressTracker), so each PROGRESS report carries
// the latest value of every field (the last val_loss with each step, the last loss with an
// eval). A line that is not a JSON object with an "event" string is INVALID_ARGUMENT.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "dyt/v1/job.pb.h"

namespace dyt::worker {

struct ParsedEvent {
  enum class Kind { kStep, kEval, kCheckpoint, kError, kOther };
  Kind kind = Kind::kOther;
  std::string name;                 // the "event" field
  v1::Progress progress;            // kStep / kEval: only the fields this event carries
  v1::CheckpointRecord checkpoint;  // kCheckpoint: job_id and attempt left empty
  std::string message;              // kError
};

StatusOr<ParsedEvent> ParseEventLine(std::string_view line);

// The latest progress of a job: Merge the fields an event carries.
class ProgressTracker {
 public:
  void Merge(const ParsedEvent& event);
  const v1::Progress& progress() const { return progress_; }

 private:
  v1::Progress progress_;
};

}  // namespace dyt::worker
