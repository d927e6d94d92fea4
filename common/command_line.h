// Command-line parsing shared by every dyt binary (CLI11, header-only): one exit code for every
// mistake, and the log levels every --log-level accepts.
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace dyt {

// The exit code of a command-line mistake, in every dyt binary (CLI11's own codes vary by
// error: 105 for a failed check, 106 for a missing option, 109 for an extra argument).
inline constexpr int kExitUsage = 2;

// Parses argv into `app`: nullopt to go on, else the code to exit with now: 0 after --help or
// --version (printed), kExitUsage after printing the mistake.
inline std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  return std::nullopt;
}

// A finite number in [lo, hi], checked on the text: CLI::Range lets NaN through (every
// comparison with it is false) and its negative-number messages print the type's range.
inline CLI::Validator NumberIn(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        double v = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (ec != std::errc() || ptr != end || !std::isfinite(v) || v < lo || v > hi) {
          std::ostringstream rule;
          rule << "must be a number in [" << lo << ", " << hi << "] (got '" << text << "')";
          return rule.str();
        }
        return "";
      },
      "NUMBER");
}

// An existing regular file: CLI::ExistingFile also takes /dev/zero or a FIFO, which a reader
// would then read forever.
inline CLI::Validator RegularFile() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        std::error_code ec;
        const auto status = std::filesystem::status(path, ec);
        if (ec || !std::filesystem::exists(status)) return "no such file: " + path;
        if (!std::filesystem::is_regular_file(status)) return path + ": not a regular file";
        return "";
      },
      "FILE");
}

// The values of --log-level (spdlog's names; an unknown name would silence every line).
inline const std::vector<std::string>& LogLevelNames() {
  static const std::vector<std::string> names = {"trace", "debug",    "info", "warn",
                                                 "error", "critical", "off"};
  return names;
}

// --log-level for `app`, bound to `level`, accepting only LogLevelNames().
inline CLI::Option* AddLogLevelOption(CLI::App& app, std::string& level) {
  return app.add_option("--log-level", level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember(LogLevelNames()))
      ->capture_default_str();
}

}  // namespace dyt
