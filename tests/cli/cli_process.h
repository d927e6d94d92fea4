// Helpers for the dytctl tests that run real processes: run a program and capture its output,
// and a real dyt-scheduler on a free loopback port with its state in a temp dir.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/net.h"
#include "tests/common/temp_dir.h"

namespace dyt::cli::testing {

using ::dyt::testing::Eventually;
using ::dyt::testing::FreePort;
using ::dyt::testing::PortAccepts;

using ::dyt::testing::TempDir;

struct ProcessResult {
  int code = -1;  // exit code; -1 when killed or not started
  std::string out;
  std::string err;
};

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// posix_spawn, not fork: it runs no pthread_atfork handlers (gRPC installs some).
inline pid_t SpawnWithOutput(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env, const std::string& out_path,
                             const std::string& err_path) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& x : env) overridden = overridden || x.substr(0, x.find('=')) == name;
    if (!overridden) env_strings.push_back(entry);
  }
  for (const auto& x : env) env_strings.push_back(x);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Runs argv (argv[0] a path) to completion, killing it after `timeout`.
inline ProcessResult Run(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {},
                         std::chrono::seconds timeout = std::chrono::seconds(60)) {
  TempDir dir;
  ProcessResult result;
  pid_t pid = SpawnWithOutput(argv, env, dir.Join("out"), dir.Join("err"));
  if (pid < 0) return result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) result.code = WEXITSTATUS(status);
  result.out = ReadText(dir.Join("out"));
  result.err = ReadText(dir.Join("err"));
  return result;
}

// SIGTERM to `pid`, then waits up to `timeout` for it (SIGKILL after that). Returns its exit
// code, or -1 if it had to be killed or died by a signal.
inline int StopProcess(pid_t pid, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  if (pid <= 0) return -1;
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The real dyt-scheduler on 127.0.0.1:<free port>, state in a temp dir; SIGTERM at the end.
// Plaintext without authentication (--insecure), or with `tls`: TLS with a certificate from
// scripts/dyt-certs.sh (a CA of its own; ca_file()) and bearer tokens (admin_token()).
class SchedulerProcess {
 public:
  explicit SchedulerProcess(std::vector<std::string> extra_args = {}, bool tls = false) {
    port_ = FreePort();
    std::vector<std::string> argv = {DYT_SCHEDULER_BINARY, "--listen",    address(), "--data-dir",
                                     dir_.Join("db"),      "--log-level", "warn"};
    if (tls) {
      ProcessResult certs = Run(
          {"/bin/bash", std::string(DYT_SOURCE_DIR) + "/scripts/dyt-certs.sh", dir_.Join("certs")},
          {}, std::chrono::seconds(60));
      if (certs.code != 0) return;  // ready() stays false
      argv.insert(argv.end(), {"--tls-cert", dir_.Join("certs/server.crt"), "--tls-key",
                               dir_.Join("certs/server.key")});
    } else {
      argv.push_back("--insecure");
    }
    for (auto& a : extra_args) argv.push_back(a);
    argv_ = std::move(argv);
    Start();
  }
  ~SchedulerProcess() { Stop(); }
  // kill -9, then the same command again (same port, same store): a crash and a restart.
  bool CrashAndRestart() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    Start();
    return ready_;
  }
  // SIGTERM and wait (10 s, then SIGKILL); its exit code, -1 if killed. Once only.
  int Stop() {
    const int code = StopProcess(pid_, std::chrono::seconds(10));
    pid_ = -1;
    return code;
  }
  SchedulerProcess(const SchedulerProcess&) = delete;
  SchedulerProcess& operator=(const SchedulerProcess&) = delete;

  bool ready() const { return ready_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // With tls: the CA that signed the server certificate, and the admin token the scheduler's
  // first start wrote into its data dir.
  std::string ca_file() const { return dir_.Join("certs/ca.crt"); }
  std::string admin_token() const {
    std::string token = ReadText(dir_.Join("db/admin.token"));
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
    return token;
  }
  std::string log() const { return ReadText(dir_.Join("scheduler.err")); }

 private:
  void Start() {
    pid_ = SpawnWithOutput(argv_, {}, dir_.Join("scheduler.out"), dir_.Join("scheduler.err"));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (pid_ > 0 && !PortAccepts(port_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ready_ = pid_ > 0 && PortAccepts(port_);
  }

  TempDir dir_;
  std::vector<std::string> argv_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace dyt::cli::testing
