// Outbox: what the worker has to tell the scheduler, queued until the session sends it.
//
// The supervisor pushes rank updates and checkpoints (Push) and trainer output lines
// (AddLogLine) from its threads; the session takes them (Take) and writes them to the stream,
// in order. Log lines are batched per (job, attempt, rank): a batch is ready at 100 lines or
// 200 ms after its first line, and every pending batch is queued before a later Push, so a
// rank's last lines always go out before its EXITED update. Each batch carries the number of
// its first line in its rank's output (LogBatch.first_line), so readers can tell lines apart. While
// the scheduler is away the queue keeps updates and checkpoints; log lines beyond `max_log_lines`
// are dropped (counted). Text that is not valid UTF-8 (a trainer may print any bytes) is made
// valid (U+FFFD for each bad byte) on the way in: protobuf cannot send it otherwise.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "dyt/v1/worker_service.pb.h"

namespace dyt::worker {

class Outbox {
 public:
  static constexpr size_t kBatchLines = 100;
  static constexpr std::chrono::milliseconds kBatchDelay{200};

  explicit Outbox(size_t max_log_lines = 100000) : max_log_lines_(max_log_lines) {}

  void Push(v1::WorkerMessage message);
  void AddLogLine(const std::string& job_id, int attempt, int rank, std::string line);

  // Everything ready to send, in order; with `flush` also the log batches not yet due.
  std::vector<v1::WorkerMessage> Take(bool flush = false);
  // Puts messages that could not be sent back at the front (the session lost the stream).
  void Requeue(std::vector<v1::WorkerMessage> messages);
  // Waits until something may be ready or `timeout` passed.
  void Wait(std::chrono::milliseconds timeout);
  bool empty() const;
  size_t dropped_log_lines() const;
  // The ranks whose EXITED update is queued but not yet sent. A reconnecting worker reports
  // them as still running: the scheduler learns of their exit from the update that follows,
  // instead of taking them for ranks lost with a worker restart.
  std::vector<v1::RunningRank> PendingExits() const;

 private:
  using Clock = std::chrono::steady_clock;
  using Key = std::tuple<std::string, int, int>;
  struct Batch {
    v1::LogBatch batch;
    Clock::time_point first;
  };
  void QueueBatchesLocked(bool all);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::WorkerMessage> queue_;
  std::map<Key, Batch> batches_;
  std::map<Key, int64_t> lines_seen_;  // lines of each rank's output so far (numbers them)
  size_t log_lines_ = 0;               // lines held, in batches and queued
  size_t max_log_lines_;
  size_t dropped_ = 0;
};

}  // namespace dyt::worker
