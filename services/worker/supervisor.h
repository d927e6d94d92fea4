// Supervisor: turns the scheduler's assignments into running trainers and reports on them.
//
// Assign(assignment): validates it (ranks contiguous, slots of this worker's kind, in range and
// free), writes the trainer config (job_config.h) to
// <work_dir>/jobs/<job id>/attempt-<n>/config.yaml, creates the checkpoint directory, and
// starts one dyt-train per local rank (rank_group.h) with
//   --config ... --resume auto --events-fd 3 --job-id <job id>
// and DYT_RDZV=scheduler://<scheduler_address>, DYT_RDZV_ID, DYT_JOB_ID, DYT_JOB_ATTEMPT;
// CUDA_VISIBLE_DEVICES=<slots> for gpu ranks, OMP_NUM_THREADS=<slots> for cpu ranks.
// A bad assignment never stops the worker: each of its ranks is reported EXITED FAILED with
// the reason ("invalid job config: train.batch_size: must be >= 1").
//
// Reports go to the Outbox: STARTED per rank; PROGRESS for rank 0's step and eval events;
// CheckpointSaved for its checkpoint events; the trainers' output lines as log batches; EXITED
// per rank (exit_classifier.h), with the last `tail_lines` output lines when FAILED.
//
// Stop(stop): SIGTERM to the attempt's process groups, SIGKILL after grace_ms (or the
// default grace when 0); the ranks are then reported EXITED STOPPED. StopAll does that for
// every attempt (the scheduler has been unreachable too long, or the worker shuts down).
// Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dyt/v1/worker_service.pb.h"
#include "services/worker/exit_classifier.h"
#include "services/worker/metrics.h"
#include "services/worker/outbox.h"

namespace dyt::worker {

struct SupervisorOptions {
  std::string trainer;   // dyt-train
  std::string work_dir;  // per-attempt configs and output dirs
  std::string slot_kind = "cpu";
  int slots = 1;
  std::string dist_host;  // DYT_DIST_HOST for the ranks; empty: the trainer's default
  // DYT_SCHEDULER_CA_FILE / DYT_SCHEDULER_TOKEN_FILE for the ranks (their rendezvous client,
  // trainer/dist/scheduler_kv_store.h); absolute paths, empty: not set.
  std::string scheduler_ca_file;
  std::string scheduler_token_file;
  std::chrono::milliseconds stop_grace{std::chrono::seconds(30)};
  std::chrono::milliseconds peer_failure_grace{std::chrono::seconds(10)};
  std::string trainer_log_level = "info";
  size_t tail_lines = 30;
  // Each rank's output is also written to <attempt dir>/rank-<r>.log, up to this many bytes.
  int64_t rank_log_max_bytes = int64_t{1} << 30;
};

class Supervisor {
 public:
  // `metrics` may be null.
  Supervisor(SupervisorOptions options, Outbox* outbox, WorkerMetrics* metrics);
  // Kills (SIGKILL) whatever still runs; call StopAll and wait first for a clean stop.
  ~Supervisor();

  void Assign(const v1::Assignment& assignment);
  void Stop(const v1::StopJob& stop);
  // Stops every running attempt; with kShutdown, also every assignment that comes later
  // (reported EXITED STOPPED, never started).
  void StopAll(StopCause cause, std::chrono::milliseconds grace);

  // The ranks whose processes have not all been reported EXITED yet.
  std::vector<v1::RunningRank> Running() const;
  // The trainer pids (= their process group ids) of an attempt; empty when not running here.
  std::vector<int> Pids(const std::string& job_id, int attempt) const;
  int busy_slots() const;
  int running_attempts() const;
  // Forgets attempts that ended; stops attempts silent past their stall_timeout_s; refreshes
  // the metrics. Call periodically.
  void Reap();
  // Waits up to `timeout` until no attempt runs (Reap included).
  bool WaitIdle(std::chrono::milliseconds timeout);
  // Deletes the directories of attempts not held here that did not change for `keep`
  // (work_dir_retention.h), logging what went; returns how many directories were removed.
  size_t PruneWorkDir(std::chrono::seconds keep);

 private:
  struct Run;
  void ReportFailure(const v1::Assignment& assignment, const std::string& reason);
  std::string CheckAssignmentLocked(const v1::Assignment& a, std::vector<int>* slots) const;
  // Under mu_: the watchdog of JobSpec.stall_timeout_s (stops a silent attempt as hung).
  void StopIfStalled(Run& run);

  SupervisorOptions options_;
  Outbox* outbox_;
  WorkerMetrics* metrics_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, std::unique_ptr<Run>> runs_;
  bool shutting_down_ = false;  // StopAll(kShutdown) ran: no assignment starts any more
};

}  // namespace dyt::worker
