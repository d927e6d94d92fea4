// One JSON line of dyt-train's events (docs/trainer.md "Events") -> what the worker reports.
//
//   start -> ModelShape (params and the model config's sizes: the job's FLOPs per token)
//   step  -> Progress (step, steps, loss, lr, grad_norm, tokens_per_s, alpha_min/mean/max),
//            step_seconds, has_alpha (the alpha fields were present: a DyT model)
//   eval  -> Progress (step, val_loss)
//   checkpoint -> CheckpointRecord (step, path = dir, files, total_bytes = bytes, loss, val_loss),
//            checkpoint_seconds (time to save)
//   error -> the message (the reason of a failed rank)
//   anything else: kind kOther (resumed, stopped, done, ...), kept by name.
// A loss or val_loss that is present but null (how JSON writes a NaN) reads as NaN.
// Progress events update a running snapshot (ProgressTracker), so each PROGRESS report carries
// the latest value of every field (the last val_loss with each step, the last loss with an
// eval). A line that is not a JSON object with an "event" string is INVALID_ARGUMENT.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "dyt/v1/job.pb.h"

namespace dyt::worker {

// The model's sizes from the "start" event (0 when absent).
struct ModelShape {
  int64_t params = 0;
  int64_t vocab_size = 0;
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t max_seq_len = 0;
  bool tie_embeddings = false;
};

struct ParsedEvent {
  enum class Kind { kStart, kStep, kEval, kCheckpoint, kError, kOther };
  Kind kind = Kind::kOther;
  std::string name;                 // the "event" field
  v1::Progress progress;            // kStep / kEval: only the fields this event carries
  v1::CheckpointRecord checkpoint;  // kCheckpoint: job_id and attempt left empty
  std::string message;              // kError
  ModelShape model;                 // kStart
  double step_seconds = 0;          // kStep: wall time of the step
  bool has_alpha = false;           // kStep: alpha_min/mean/max were present (DyT)
  double checkpoint_seconds = 0;    // kCheckpoint: time to write it
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
