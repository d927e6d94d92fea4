#include "scheduler/key_lock.h"

namespace dyt {

void KeyLock::Lock(const std::string& key) {
  std::unique_lock<std::mutex> lock(mu_);
  released_.wait(lock, [&] { return !held_.contains(key); });
  held_.insert(key);
}

void KeyLock::Unlock(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase(key);
  }
  released_.notify_all();
}

}  // namespace dyt
