// LogLimiter: at most `per_window` lines of one kind per window, for lines a client can cause
// (refused calls). A flood of bad requests then costs the log a few lines a minute, and the
// first line after a quiet spell says how many were left out.
//
// Thread safe. (spdlog has no rate limit of its own.)
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace dyt {

class LogLimiter {
 public:
  explicit LogLimiter(int per_window = 20,
                      std::chrono::steady_clock::duration window = std::chrono::minutes(1))
      : per_window_(per_window), window_(window) {}

  // Whether to log a line now; when it is the first after some were suppressed, `*note` is
  // " (N similar lines suppressed)", else "".
  bool Allow(std::string* note) {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= window_) {
      window_start_ = now;
      in_window_ = 0;
    }
    if (in_window_ >= per_window_) {
      ++suppressed_;
      return false;
    }
    ++in_window_;
    *note = suppressed_ == 0
                ? ""
                : " (" + std::to_string(suppressed_) + " similar lines suppressed before it)";
    suppressed_ = 0;
    return true;
  }

 private:
  const int per_window_;
  const std::chrono::steady_clock::duration window_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_{};
  int in_window_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace dyt
