// Launcher: starts the local ranks of a job as child processes and supervises them, the way
// torchrun does. Used by dyt-launch; written as a library so that dyt-worker can reuse it.
//
// Each child:
//   * gets the distributed environment (see make_communicator.h): DYT_RANK = node_rank *
//     nproc + local_rank, DYT_WORLD_SIZE = nnodes * nproc, DYT_LOCAL_RANK, plus
//     DYT_LOCAL_WORLD_SIZE, DYT_NODE_RANK, DYT_RDZV, DYT_RDZV_ID and, when given,
//     DYT_DIST_TIMEOUT_S and DYT_DIST_HOST; the rest of the environment is inherited;
//   * runs in its own process group, so that a signal to it reaches whatever it started
//     (a shell's children too), and so that a terminal's Ctrl-C reaches the launcher only,
//     which forwards it;
//   * gets SIGTERM if the launcher dies (PR_SET_PDEATHSIG), so no rank outlives it unnoticed.
//     The signal follows the *thread* that called Start: call Start and Wait from one thread
//     that lives until Wait returns.
//
// Supervision (Wait): signals the launcher receives are forwarded to every running child; a
// second one escalates to SIGKILL. When a child exits with a non-zero code or by a signal
// (and no stop was requested), the launcher sends SIGTERM to the others, waits up to
// `grace`, then SIGKILLs what is left: data-parallel ranks cannot go on without a peer.
//
// Exit code (LaunchResult::exit_code): 0 when every child exited 0; 3 ("preempted,
// resumable": the trainer checkpointed and stopped) when every child exited 0 or 3 and at
// least one 3; otherwise the first failing child's exit code, or 128 + its signal number, or
// 1 when that child exited 3 but others then failed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dyt::dist {

// The exit code a trainer uses for "stopped on request after a checkpoint; resume me".
constexpr int kExitPreempted = 3;

struct LaunchSpec {
  std::vector<std::string> command;  // program (a path, or a name looked up in PATH) and args
  int nproc = 1;                     // ranks on this machine
  int nnodes = 1;                    // machines in the job
  int node_rank = 0;                 // this machine's index in [0, nnodes)
  std::string rdzv_dir;              // DYT_RDZV (a directory or HOST:PORT); may be empty only
                                     // for a world of one
  std::string rdzv_id;               // DYT_RDZV_ID; may be empty only for a world of one
  double dist_timeout_s = 0;         // DYT_DIST_TIMEOUT_S when > 0; unset (trainer default) else
  std::string host;                  // DYT_DIST_HOST when not empty
  // OMP_NUM_THREADS for each child when the launcher's environment does not set it; 0 leaves
  // it unset. (N ranks each using every core would oversubscribe the machine N times.)
  int omp_threads_if_unset = 0;
  std::chrono::milliseconds grace{std::chrono::seconds(10)};   // SIGTERM -> SIGKILL after a failure
  std::vector<std::pair<std::string, std::string>> extra_env;  // set in every child, last
  // A block of ranks out of a larger world (dyt-worker runs the contiguous ranks the scheduler
  // gave it): the global rank of local rank 0 and the world size. Defaults (-1 / 0):
  // node_rank * nproc and nnodes * nproc. When set, first_rank + nproc <= world_size.
  int first_rank = -1;
  int world_size = 0;
  // What one child gets beyond the rest of the spec: environment set after extra_env, and
  // file descriptors (parent fd -> child fd, e.g. a pipe's write end -> 1) installed before
  // exec; every other descriptor the launcher's process opened close-on-exec stays closed.
  struct ChildSetup {
    std::vector<std::pair<std::string, std::string>> env;
    std::vector<std::pair<int, int>> fds;
  };
  std::vector<ChildSetup> per_child;  // empty, or one entry per local rank
  // Where the supervisor's notes go (a child failed, a signal was forwarded); empty: stderr,
  // each line prefixed "dyt-launch: ".
  std::function<void(const std::string&)> log;
};

// The global rank of local rank 0 and the world size `spec` gives (see first_rank above).
int FirstRank(const LaunchSpec& spec);
int WorldSize(const LaunchSpec& spec);

// OK, or INVALID_ARGUMENT naming the field and the rule.
Status ValidateLaunchSpec(const LaunchSpec& spec);

// The environment ("NAME=value" strings) child `local_rank` gets, given the launcher's own
// environment `base` (also "NAME=value" strings).
std::vector<std::string> ChildEnvironment(const LaunchSpec& spec, int local_rank,
                                          const std::vector<std::string>& base);

struct ChildOutcome {
  int rank = -1;        // global rank
  int local_rank = -1;  // index on this machine
  pid_t pid = -1;
  bool exited = false;  // exited normally with exit_code; else killed by term_signal
  int exit_code = 0;
  int term_signal = 0;
  bool signalled_by_launcher = false;  // the launcher sent it SIGTERM/SIGKILL or a forward

  bool ok() const { return exited && exit_code == 0; }
  // "exited with code 7" or "was killed by signal 9 (Killed)".
  std::string Describe() const;
};

struct LaunchResult {
  int exit_code = 0;
  int first_failed_rank = -1;          // the child whose failure stopped the others; -1 if none
  bool stop_requested = false;         // a signal was forwarded (the launcher was asked to stop)
  std::vector<ChildOutcome> children;  // by local rank
  // One line: "all 2 ranks exited 0", or "rank 1 (local 1, pid 42) exited with code 7; the
  // other 1 rank(s) were stopped".
  std::string summary;
};

class Launcher {
 public:
  // Validates the spec, resolves the program, and starts every child. On a failure to start
  // one, kills (SIGKILL) and reaps those already started.
  static StatusOr<std::unique_ptr<Launcher>> Start(const LaunchSpec& spec);
  // Kills (SIGKILL) and reaps any child still running.
  ~Launcher();
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // Sends `sig` to the process group of every child not yet reaped.
  void SignalAll(int sig);

  // Supervises until every child is reaped (see the top of this file). `poll_signal` is
  // called about every 10 ms and returns a signal to forward, or 0; it may be empty.
  LaunchResult Wait(const std::function<int()>& poll_signal);

  const std::vector<ChildOutcome>& children() const { return children_; }

 private:
  explicit Launcher(LaunchSpec spec) : spec_(std::move(spec)) {}
  // Reaps every child that has ended, without blocking; returns how many are still running.
  int Reap(std::vector<int>* just_ended);
  void Log(const std::string& line) const;

  LaunchSpec spec_;
  std::vector<ChildOutcome> children_;
  std::vector<bool> running_;
};

}  // namespace dyt::dist
