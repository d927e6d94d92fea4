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

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/net.h"
#include "tests/common/process.h"
#include "tests/common/temp_dir.h"

namespace dyt::cli::testing {

using ::dyt::testing::Eventually;
using ::dyt::testing::FreePort;
using ::dyt::testing::PortAccepts;

using ::dyt::testing::TempDir;

using ::dyt::testing::ProcessResult;
using ::dyt::testing::ReadText;
using ::dyt::testing::Run;
using ::dyt::testing::SpawnWithOutput;
using ::dyt::testing::StopProcess;

// The real dyt-scheduler on 127.0.0.1:<free port>, state in a temp dir; SIGTERM at the end.
// Plaintext without authentication (--insecure), or with `tls`: TLS with a certificate from
// scripts/dyt-certs.sh (a CA of its own; ca_file()) and bearer tokens (admin_token()).
class SchedulerProcess {
 public:
  explicit SchedulerProcess(std::vector<std::string> extra_args = {}, bool tls = false) {
    port_ = FreePort();
    std::vector<std::string> argv = {DYT_SCHEDULER_BINARY, "--listen", address(), "--data-dir",
                                     dir_.Join("db")};
    // warn, unless extra_args choose a level (the option may be given once).
    if (std::find(extra_args.begin(), extra_args.end(), "--log-level") == extra_args.end()) {
      argv.insert(argv.end(), {"--log-level", "warn"});
    }
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
