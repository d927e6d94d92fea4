// Running real programs in tests: spawn with captured output, run to completion with a
// deadline, stop with SIGTERM.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/temp_dir.h"

namespace dyt::testing {

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

}  // namespace dyt::testing
