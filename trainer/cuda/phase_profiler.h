// PhaseProfiler: where the GPU time of a training step goes, phase by phase.
//
// The code under study calls Mark(phase, stream) before each phase's work; the GPU time from
// one mark to the next (two CUDA events on the same stream) is charged to the first mark's
// phase, so the phases of a step add up to the step's GPU wall time, idle gaps included (mark
// them, e.g. "host.wait" before a stream synchronisation, to see them as their own phase).
// Flush(stream) ends the last phase, waits for the events and adds their times to the totals.
//
// For benchmarks only (dyt-gpu-train-bench --profile-steps): a model or backend holds a
// PhaseProfiler* that is null in production, and a null profiler costs one branch per mark.
// On, each mark is one cudaEventRecord (about a microsecond of host time); events on one stream
// serialise nothing that was not already in order on it. Marks must all be on one stream
// between flushes (times between streams mean nothing): Flush reports a mark on another stream,
// and more than `capacity` marks between flushes, as FAILED_PRECONDITION (and drops that batch).
//
// Phase names are not copied: pass string literals (or strings that outlive the profiler).
// Not thread-safe; tied to the device current at Create.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dyt::cuda {

class PhaseProfiler {
 public:
  // `capacity` events (marks between two flushes, plus the flush's own); >= 2.
  static StatusOr<std::unique_ptr<PhaseProfiler>> Create(int capacity = 8192);
  ~PhaseProfiler();
  PhaseProfiler(const PhaseProfiler&) = delete;
  PhaseProfiler& operator=(const PhaseProfiler&) = delete;

  // Ends the current phase (if any) and starts `phase`, both at this point of `stream`.
  void Mark(const char* phase, cudaStream_t stream);
  // Ends the current phase on `stream`, waits for it, and adds every phase's milliseconds since
  // the last flush to the totals. Nothing marked: OK, nothing added.
  Status Flush(cudaStream_t stream);

  // Milliseconds per phase over all flushes, phases in the order they first appeared.
  const std::vector<std::pair<std::string, double>>& totals() const { return totals_; }
  // Sum of totals(): the GPU wall time of everything flushed.
  double total_ms() const;
  void Reset() { totals_.clear(); }

 private:
  explicit PhaseProfiler(std::vector<cudaEvent_t> events);

  std::vector<cudaEvent_t> events_;
  std::vector<const char*> names_;  // names_[i] started at events_[i]
  cudaStream_t stream_ = nullptr;
  bool mixed_streams_ = false;
  bool overflow_ = false;
  std::vector<std::pair<std::string, double>> totals_;
};

}  // namespace dyt::cuda
