#include "trainer/checkpoint/checkpoint_names.h"

#include <unistd.h>

#include <cstdio>

namespace dyt {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string ExpAvgName(const std::string& param_name) { return "exp_avg." + param_name; }
std::string ExpAvgSqName(const std::string& param_name) { return "exp_avg_sq." + param_name; }

std::string StepDirName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::optional<int64_t> ParseStepDirName(std::string_view name) {
  constexpr std::string_view kPrefix = "step-";
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  const std::string_view digits = name.substr(kPrefix.size());
  // 18 digits keep the value inside int64_t.
  if (!AllDigits(digits) || digits.size() > 18) return std::nullopt;
  int64_t step = 0;
  for (char c : digits) step = step * 10 + (c - '0');
  // Only the canonical spelling counts, so one step never has two directories.
  if (StepDirName(step) != name) return std::nullopt;
  return step;
}

std::string TempName(const std::string& what) {
  return ".tmp-" + what + "-" + std::to_string(::getpid());
}

std::string OldName(const std::string& what) {
  return ".old-" + what + "-" + std::to_string(::getpid());
}

std::optional<long> ParseWriterPid(std::string_view name) {
  if (name.substr(0, 5) != ".tmp-" && name.substr(0, 5) != ".old-") return std::nullopt;
  const size_t dash = name.rfind('-');
  if (dash < 5) return std::nullopt;
  const std::string_view digits = name.substr(dash + 1);
  if (!AllDigits(digits) || digits.size() > 9) return std::nullopt;
  long pid = 0;
  for (char c : digits) pid = pid * 10 + (c - '0');
  if (pid <= 0) return std::nullopt;
  return pid;
}

std::string BaseName(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  const size_t slash = path.rfind('/', end - 1);
  return slash == std::string::npos ? path.substr(0, end) : path.substr(slash + 1, end - slash - 1);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace dyt
