#include "trainer/checkpoint/attempt_fence.h"

#include <charconv>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/durable_file.h"

namespace dyt {

StatusOr<int> StoreAttempt(const std::string& store) {
  auto text = ReadFileToString(JoinPath(store, kAttemptFile), /*max_bytes=*/64);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return 0;
    return text.status();
  }
  const std::string s = text->substr(0, text->find_last_not_of(" \t\r\n") + 1);
  int attempt = -1;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), attempt);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || attempt < 0) {
    return DataLoss(JoinPath(store, kAttemptFile) + " does not hold an attempt number");
  }
  return attempt;
}

StatusOr<int> ClaimStore(const std::string& store, int attempt) {
  if (attempt <= 0) return 0;
  DYT_RETURN_IF_ERROR(EnsureDir(store));
  auto current = StoreAttempt(store);
  // A damaged claim is replaced: the number only ever has to grow.
  const int claimed = current.ok() ? *current : 0;
  if (claimed >= attempt) return claimed;
  DYT_RETURN_IF_ERROR(
      ReplaceFileAtomically(JoinPath(store, kAttemptFile), std::to_string(attempt) + "\n"));
  return attempt;
}

}  // namespace dyt
