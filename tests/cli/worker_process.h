// Helpers for tests that run a whole dyt cluster as processes: a real dyt-worker (CPU slots)
// connected to a scheduler, polling with a deadline, and a /proc scan that finds the processes
// a test left behind (every process a test starts names the test's temp dir on its command
// line: the worker its --work-dir, the trainers their config under it).
#pragma once

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "tests/cli/cli_process.h"

namespace dyt::cli::testing {

// The SHA-256 (hex) of a file, or "" if it cannot be read.
inline std::string FileSha256(const std::string& path) {
  auto sha = Sha256FileHex(path);
  return sha.ok() ? *sha : "";
}

// Pids of live (not zombie) processes, other than this one, whose command line contains `text`.
inline std::vector<pid_t> LiveProcessesMentioning(const std::string& text) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    const std::string dir = "/proc/" + std::to_string(pid);
    if (ReadText(dir + "/cmdline").find(text) == std::string::npos) continue;
    const std::string stat = ReadText(dir + "/stat");
    if (stat.empty() || stat.find(") Z ") != std::string::npos) continue;
    out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

// A real dyt-worker offering `slots` CPU slots to `scheduler`, its work dir and log under
// `dir`, running the real dyt-train. SIGTERM (then a wait) when it goes away.
class WorkerProcess {
 public:
  // `extra_args` go last (e.g. --ca-file and --token-file for a TLS scheduler).
  WorkerProcess(const std::string& scheduler, const std::string& dir, const std::string& id,
                int slots, const std::vector<std::string>& extra_args = {})
      : log_(dir + "/worker-" + id + ".log") {
    std::vector<std::string> argv = {DYT_WORKER_BINARY,
                                     "--scheduler",
                                     scheduler,
                                     "--worker-id",
                                     id,
                                     "--cpu-slots",
                                     std::to_string(slots),
                                     "--work-dir",
                                     dir + "/work-" + id,
                                     "--trainer",
                                     DYT_TRAIN_BINARY,
                                     "--stop-grace-s",
                                     "10",
                                     "--orphan-timeout-s",
                                     "30",
                                     "--log-level",
                                     "info"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    pid_ = SpawnWithOutput(argv, {}, dir + "/worker-" + id + ".out", log_);
  }
  ~WorkerProcess() { Stop(); }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // SIGTERM (the worker stops its trainers, reports and exits 0) and wait; its exit code, -1
  // if it had to be killed. Once only.
  int Stop() {
    const int code = StopProcess(pid_, std::chrono::seconds(40));
    pid_ = -1;
    return code;
  }
  bool started() const { return pid_ > 0; }
  std::string log() const { return ReadText(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

}  // namespace dyt::cli::testing
