// RankGroup: the dyt-train processes of one job attempt on this worker (its contiguous block
// of ranks), started and supervised with the trainer's launcher (trainer/dist/launcher.h).
//
// Each rank runs in its own process group with DYT_RANK / DYT_WORLD_SIZE / DYT_RDZV... set by
// the launcher, plus the per-rank environment given here (CUDA_VISIBLE_DEVICES, ...). Its
// stdout and stderr go into one pipe, read line by line (callback `output`, and a ring of the
// last `tail_lines` lines per rank); fd 3 is the events pipe (pass --events-fd 3), read line by
// line (callback `event`). One thread per group starts the processes and supervises them
// until all are reaped (PR_SET_PDEATHSIG follows that thread, so a dying worker takes its
// trainers down with SIGTERM: they checkpoint).
//
// Stopping: RequestStop sends SIGTERM to every rank's process group at once, and SIGKILL
// when they are still running `grace` later. When a rank fails by itself the launcher stops the
// others (SIGTERM, SIGKILL after spec.grace). When every rank has ended and its output is read
// (at most 2 s after its exit), `exited` is called once per rank, in rank order, then done()
// turns true. Callbacks run on the group's thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "services/worker/exit_classifier.h"
#include "trainer/dist/launcher.h"

namespace dyt::worker {

struct RankGroupSpec {
  std::vector<std::string> command;  // the trainer and its arguments
  int first_rank = 0;
  int nproc = 1;
  int world_size = 1;
  std::string rdzv;                                                        // DYT_RDZV
  std::string rdzv_id;                                                     // DYT_RDZV_ID
  std::vector<std::pair<std::string, std::string>> env;                    // every rank
  std::vector<std::vector<std::pair<std::string, std::string>>> rank_env;  // by local rank
  std::chrono::milliseconds grace{std::chrono::seconds(10)};
  size_t tail_lines = 30;
};

struct RankGroupCallbacks {
  std::function<void(int rank, pid_t pid)> started;
  std::function<void(int rank, const std::string& line)> output;
  std::function<void(int rank, const std::string& line)> event;
  // `failed_peer` is the rank whose failure made the launcher stop the others, or -1;
  // `stop` why RequestStop was called (kNone: it was not).
  std::function<void(int rank, const dist::ChildOutcome& outcome,
                     const std::vector<std::string>& tail, int failed_peer, StopCause stop)>
      exited;
};

class RankGroup {
 public:
  // Starts the processes (on the group's thread) and returns once they run, or the error that
  // kept them from starting (no process is left then).
  static StatusOr<std::unique_ptr<RankGroup>> Start(RankGroupSpec spec,
                                                    RankGroupCallbacks callbacks);
  // Stops the ranks (if running) with SIGKILL and joins the thread.
  ~RankGroup();
  RankGroup(const RankGroup&) = delete;
  RankGroup& operator=(const RankGroup&) = delete;

  // SIGTERM now, SIGKILL after `grace`. The first cause is kept; a later request can only
  // shorten the grace.
  void RequestStop(StopCause cause, std::chrono::milliseconds grace);
  StopCause stop_cause() const;
  bool done() const { return done_.load(); }
  // Every process of the group has exited (its slots are free); the exit reports may still be
  // on their way. Set just before the reports, so a new assignment of the same slots that the
  // scheduler sends on seeing them is never refused as busy.
  bool processes_ended() const { return processes_ended_.load(); }
  // Waits up to `timeout` for done().
  bool WaitDone(std::chrono::milliseconds timeout) const;
  std::vector<pid_t> pids() const;

 private:
  RankGroup() = default;
  void Run(std::unique_ptr<dist::Launcher> launcher, std::vector<int> out_fds,
           std::vector<int> event_fds);

  RankGroupSpec spec_;
  RankGroupCallbacks callbacks_;
  std::thread thread_;
  mutable std::mutex mu_;
  StopCause stop_cause_ = StopCause::kNone;
  std::chrono::steady_clock::time_point kill_at_ = std::chrono::steady_clock::time_point::max();
  std::vector<pid_t> pids_;
  std::atomic<bool> done_{false};
  std::atomic<bool> processes_ended_{false};
};

}  // namespace dyt::worker
