#include "trainer/train/events.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace dyt {

void EventWriter::Emit(nlohmann::json event) {
  if (fd_ < 0) return;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  event["time"] = std::chrono::duration<double>(now).count();
  const std::string line =
      event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      fd_ = -1;
      return;
    }
    p += w;
    left -= size_t(w);
  }
}

}  // namespace dyt
