// Mutual exclusion per key: holders of different keys never wait for each other.
//
// CreateJob holds its client request id for the check-then-write of an idempotent submit, so
// two concurrent retries of one request create one job, while submissions with different ids
// still commit concurrently (and share WAL fsyncs through RocksDB's group commit).
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>

namespace dyt {

class KeyLock {
 public:
  // Blocks until no other holder has `key`, then holds it.
  void Lock(const std::string& key);
  void Unlock(const std::string& key);

 private:
  std::mutex mu_;
  std::condition_variable released_;
  std::unordered_set<std::string> held_;
};

// Holds a key of a KeyLock for its lifetime.
class KeyLockGuard {
 public:
  KeyLockGuard(KeyLock& lock, std::string key) : lock_(lock), key_(std::move(key)) {
    lock_.Lock(key_);
  }
  ~KeyLockGuard() { lock_.Unlock(key_); }
  KeyLockGuard(const KeyLockGuard&) = delete;
  KeyLockGuard& operator=(const KeyLockGuard&) = delete;

 private:
  KeyLock& lock_;
  std::string key_;
};

}  // namespace dyt
