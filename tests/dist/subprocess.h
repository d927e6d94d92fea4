// Small helpers for the multi-process tests of trainer/dist: start a program with extra
// environment variables, wait for it with a deadline, read files, make a temp dir.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/common/temp_dir.h"

namespace dyt::dist::testing {

using ::dyt::testing::TempDir;

// Starts argv[0] (a path) with this process's environment plus `env` ("NAME=value", which
// win), optionally with stderr sent to `stderr_path`. Returns the pid, or -1.
inline pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                   const std::string& stderr_path = "") {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const std::string& x : env) overridden = overridden || x.substr(0, x.find('=')) == name;
    if (!overridden) env_strings.push_back(entry);
  }
  for (const std::string& x : env) env_strings.push_back(x);
  std::vector<char*> envp, args;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (std::string& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!stderr_path.empty()) {
      FILE* f = std::fopen(stderr_path.c_str(), "w");
      if (f != nullptr) ::dup2(::fileno(f), 2);
    }
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

struct ExitInfo {
  bool finished = false;  // false: still running at the deadline (then killed)
  bool exited = false;
  int code = -1;
  int signal = 0;
  double seconds = 0;  // from the call to the end
};

// Waits up to `timeout` for `pid`; kills it (SIGKILL) if it is still running then.
inline ExitInfo WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  ExitInfo info;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  int status = 0;
  while (true) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return info;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      info.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return info;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  info.finished = true;
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) {
    info.exited = true;
    info.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info.signal = WTERMSIG(status);
  }
  return info;
}

inline std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits up to `timeout` for `path` to exist.
inline bool WaitForFile(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// CLOCK_MONOTONIC in ms: the same clock in every process of the machine.
inline int64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace dyt::dist::testing
