// WorkerSession: one connected worker's outgoing message queue.
//
// The Scheduler decides (under its lock) what a worker must be told and pushes it here; the
// WorkerService's Connect handler drains the queue onto the gRPC stream from its own thread, so
// a slow or stuck worker never blocks the scheduler. Close() ends the session: pending and later
// messages are dropped and Pop returns nullopt at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "dyt/v1/worker_service.pb.h"

namespace dyt {

class WorkerSession {
 public:
  explicit WorkerSession(std::string worker_id) : worker_id_(std::move(worker_id)) {}

  const std::string& worker_id() const { return worker_id_; }

  // Queues `message`; false when the session is closed.
  bool Push(v1::SchedulerMessage message) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return false;
      outbox_.push_back(std::move(message));
    }
    cv_.notify_one();
    return true;
  }

  // The next message, waiting up to `timeout`; nullopt on timeout or when closed.
  std::optional<v1::SchedulerMessage> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return closed_ || !outbox_.empty(); });
    if (closed_ || outbox_.empty()) return std::nullopt;
    v1::SchedulerMessage message = std::move(outbox_.front());
    outbox_.pop_front();
    return message;
  }

  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      outbox_.clear();
    }
    cv_.notify_all();
  }

  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }

 private:
  const std::string worker_id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::SchedulerMessage> outbox_;
  bool closed_ = false;
};

}  // namespace dyt
