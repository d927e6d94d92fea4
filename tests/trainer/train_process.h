// Helpers for tests that run the real dyt-train (and dyt-launch) binaries as processes.
#pragma once

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dyt::testing {

// Runs `dyt-train ARGS` (under dyt-launch with `nproc` ranks when nproc > 1), appending its
// JSON events to `events`; returns the exit status (-1 when killed by a signal).
inline int RunDytTrain(const std::vector<std::string>& args, const std::string& events,
                       int nproc = 1) {
  std::string cmd;
  if (nproc > 1) {
    cmd = std::string(DYT_LAUNCH_BIN) + " --nproc " + std::to_string(nproc) + " --timeout-s 30 -- ";
  }
  cmd += std::string(DYT_TRAIN_BIN) + " --log-level warn --events-fd 3";
  for (const auto& a : args) cmd += " " + a;
  cmd += " 3>>" + events;
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// step -> loss of every "step" event in an events file.
inline std::map<int64_t, double> StepLosses(const std::string& events) {
  std::map<int64_t, double> out;
  std::ifstream in(events);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["event"] == "step") out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

}  // namespace dyt::testing
