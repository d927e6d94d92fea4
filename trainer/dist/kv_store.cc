#include "trainer/dist/kv_store.h"

namespace dyt::dist {

namespace {
constexpr size_t kMaxKeyLength = 200;

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}
}  // namespace

Status ValidateKvKey(const std::string& key) {
  if (key.empty() || key.size() > kMaxKeyLength) {
    return InvalidArgument("kv key '" + key + "': must have 1 to " + std::to_string(kMaxKeyLength) +
                           " characters");
  }
  if (key[0] == '.') {
    return InvalidArgument("kv key '" + key + "': must not start with '.'");
  }
  for (char c : key) {
    if (!IsKeyChar(c)) {
      return InvalidArgument("kv key '" + key + "': only [A-Za-z0-9._-] are allowed");
    }
  }
  return Status::Ok();
}

}  // namespace dyt::dist
