// Logging for every dyt process: spdlog with one format, to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace dyt {

// Sets the default logger's pattern and level ("trace", "debug", "info", "warn", "error").
// `process` names the program in each line (e.g. "dyt-train[rank 1]").
void InitLogging(const std::string& process, const std::string& level = "info");

}  // namespace dyt
