// The rule for a worker id, shared by dyt-worker (its --worker-id) and dyt-scheduler (every
// registration).
#pragma once

#include <cctype>
#include <string>

namespace dyt {

inline constexpr char kWorkerIdRule[] =
    "1-64 characters [A-Za-z0-9._-], starting with a letter or digit";

// Whether `id` is a worker id: kWorkerIdRule. The first character is no '-', '.' or '_' so an id
// never reads as a command-line option (dytctl workers drain -w1) or a hidden file.
inline bool IsWorkerId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(id.front()))) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace dyt
