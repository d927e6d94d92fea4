// TestWorker: a worker session driven by a test, over a real gRPC channel to a real scheduler.
// It speaks WorkerService.Connect like dyt-worker does (register, heartbeats, updates) but runs
// no trainers: the test decides what each rank reports, so every scheduler transition can be
// checked step by step. (tests/worker/ runs the real dyt-worker with real trainers.)
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dyt/v1/worker_service.grpc.pb.h"

namespace dyt::testing {

// A rank a (re)registering worker reports still running, holding `slots`.
inline v1::RunningRank Running(const std::string& job_id, int attempt, int rank,
                               std::vector<int> slots = {}) {
  v1::RunningRank r;
  r.set_job_id(job_id);
  r.set_attempt(attempt);
  r.set_rank(rank);
  for (int s : slots) r.add_slots(s);
  return r;
}

class TestWorker {
 public:
  // `instance`: RegisterWorker.instance_id ("" like a worker from before it existed).
  TestWorker(int port, const std::string& id, int slots, const std::string& kind = "cpu",
             std::vector<v1::RunningRank> running = {}, bool shutting_down = false,
             const std::string& instance = "")
      : id_(id) {
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::WorkerService::NewStub(channel_);
    stream_ = stub_->Connect(&context_);
    v1::WorkerMessage hello;
    v1::RegisterWorker* r = hello.mutable_register_();
    r->set_worker_id(id);
    r->set_hostname("host-" + id);
    r->set_slot_kind(kind);
    r->set_slots(slots);
    r->set_memory_bytes(int64_t(1) << 30);
    for (auto& rank : running) *r->add_running() = rank;
    r->set_shutting_down(shutting_down);
    r->set_instance_id(instance);
    EXPECT_TRUE(stream_->Write(hello));
    reader_ = std::thread([this] {
      v1::SchedulerMessage message;
      while (stream_->Read(&message)) {
        {
          std::lock_guard lock(mu_);
          inbox_.push_back(message);
        }
        cv_.notify_all();
      }
      {
        std::lock_guard lock(mu_);
        ended_ = true;
      }
      cv_.notify_all();
    });
    heartbeat_ = std::thread([this] {
      while (!stop_heartbeats_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (stop_heartbeats_) break;
        v1::WorkerMessage beat;
        beat.mutable_heartbeat();
        Send(beat);
      }
    });
  }

  ~TestWorker() { Close(); }

  // Ends the session like a crashed worker: no more heartbeats, the stream is cancelled.
  void Close() {
    stop_heartbeats_ = true;
    if (heartbeat_.joinable()) heartbeat_.join();
    context_.TryCancel();
    if (reader_.joinable()) {
      reader_.join();
      stream_->Finish();
    }
  }

  // Stops heartbeats but keeps the stream open (a hung worker).
  void StopHeartbeats() {
    stop_heartbeats_ = true;
    if (heartbeat_.joinable()) heartbeat_.join();
  }

  bool Send(const v1::WorkerMessage& message) {
    std::lock_guard lock(write_mu_);
    return stream_->Write(message);
  }

  // The first received message (not yet taken) that `match` accepts, waiting up to `timeout`;
  // it is removed from the inbox.
  std::optional<v1::SchedulerMessage> Take(
      const std::function<bool(const v1::SchedulerMessage&)>& match,
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(mu_);
    std::optional<v1::SchedulerMessage> found;
    cv_.wait_for(lock, timeout, [&] {
      for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
        if (match(*it)) {
          found = *it;
          inbox_.erase(it);
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::optional<v1::Assignment> TakeAssignment(
      const std::string& job_id, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto m = Take([&](const auto& m) { return m.has_assign() && m.assign().job_id() == job_id; },
                  timeout);
    if (!m) return std::nullopt;
    return m->assign();
  }

  std::optional<v1::StopJob> TakeStop(
      const std::string& job_id, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto m =
        Take([&](const auto& m) { return m.has_stop() && m.stop().job_id() == job_id; }, timeout);
    if (!m) return std::nullopt;
    return m->stop();
  }

  // Reports rank `rank` of (job, attempt).
  void Started(const std::string& job, int attempt, int rank) {
    Update(job, attempt, rank, v1::RankUpdate::STARTED);
  }
  void Exited(const std::string& job, int attempt, int rank, v1::RankUpdate::Exit exit,
              const std::string& reason = "", const std::string& stderr_tail = "",
              int exit_code = 0, bool stopped_by_worker = false) {
    v1::WorkerMessage m;
    v1::RankUpdate* u = m.mutable_update();
    u->set_job_id(job);
    u->set_attempt(attempt);
    u->set_rank(rank);
    u->set_kind(v1::RankUpdate::EXITED);
    u->set_exit(exit);
    u->set_reason(reason);
    u->set_stderr_tail(stderr_tail);
    u->set_exit_code(exit_code);
    u->set_stopped_by_worker(stopped_by_worker);
    Send(m);
  }
  void Update(const std::string& job, int attempt, int rank, v1::RankUpdate::Kind kind) {
    v1::WorkerMessage m;
    v1::RankUpdate* u = m.mutable_update();
    u->set_job_id(job);
    u->set_attempt(attempt);
    u->set_rank(rank);
    u->set_kind(kind);
    Send(m);
  }

  // Starts every rank of an assignment.
  void StartAll(const v1::Assignment& a) {
    for (const auto& r : a.ranks()) Started(a.job_id(), a.attempt(), r.rank());
  }
  void ExitAll(const v1::Assignment& a, v1::RankUpdate::Exit exit) {
    for (const auto& r : a.ranks()) Exited(a.job_id(), a.attempt(), r.rank(), exit);
  }

  bool ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }
  const std::string& id() const { return id_; }

 private:
  std::string id_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::SchedulerMessage>> stream_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::SchedulerMessage> inbox_;
  bool ended_ = false;
  std::atomic<bool> stop_heartbeats_{false};
  std::thread reader_;
  std::thread heartbeat_;
};

}  // namespace dyt::testing
