// Machine-readable progress: one JSON object per line on a file descriptor.
//
// The worker daemon passes a pipe's write end as `--events-fd N` and parses each line. Every
// event has "event" (its kind) and "time" (Unix seconds, fractional). Kinds written by the
// trainer: "start", "step", "eval", "done", "error" — fields are listed in docs/trainer.md.
// Each line is written with a single write(2) so lines from one process never interleave.
#pragma once

#include <nlohmann/json.hpp>

namespace dyt {

class EventWriter {
 public:
  // fd < 0 disables the writer (Emit does nothing).
  explicit EventWriter(int fd = -1) : fd_(fd) {}
  bool enabled() const { return fd_ >= 0; }
  // Adds "time" and writes the line. Write errors (e.g. the reader went away) disable the
  // writer instead of stopping training.
  void Emit(nlohmann::json event);

 private:
  int fd_;
};

}  // namespace dyt
