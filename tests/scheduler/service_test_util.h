// Helpers for the JobService tests: a valid spec, an in-process server on a free port.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dyt/v1/job_service.grpc.pb.h"
#include "dyt/v1/worker_service.grpc.pb.h"
#include "scheduler/job_service.h"
#include "scheduler/scheduler.h"
#include "scheduler/state_store.h"
#include "scheduler/worker_service.h"

namespace dyt::testing {

// A spec every rule accepts.
inline v1::JobSpec ValidSpec(const std::string& name = "run-1",
                             const std::string& owner = "alice") {
  v1::JobSpec spec;
  spec.set_name(name);
  spec.set_owner(owner);
  spec.mutable_model()->set_preset("tiny");
  spec.mutable_model()->set_norm("dyt");
  spec.mutable_data()->add_train_paths("/data/shards/train-*.bin");
  spec.mutable_optimizer()->set_lr(3e-4f);
  spec.mutable_train()->set_steps(1000);
  spec.mutable_train()->set_batch_size(8);
  spec.mutable_resources()->set_ranks(2);
  spec.mutable_resources()->set_slots_per_rank(1);
  spec.mutable_resources()->set_kind("cpu");
  spec.set_priority(10);
  spec.set_max_restarts(3);
  spec.mutable_checkpoint()->set_every_steps(100);
  return spec;
}

// A Scheduler with its JobServiceImpl and WorkerServiceImpl over `store`, served on 127.0.0.1
// at a port the OS picks, with stubs for both services.
class TestServer {
 public:
  explicit TestServer(StateStore* store, JobServiceOptions options = {},
                      SchedulerOptions scheduler_options = {})
      : scheduler_(store, std::move(scheduler_options), &metrics_),
        service_(store, &scheduler_, std::move(options), &metrics_),
        worker_service_(&scheduler_, &metrics_) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    builder.RegisterService(&worker_service_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_GT(port_, 0);
    scheduler_.SetAdvertiseAddress("127.0.0.1:" + std::to_string(port_));
    Status started = scheduler_.Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::JobService::NewStub(channel_);
    worker_stub_ = v1::WorkerService::NewStub(channel_);
  }
  ~TestServer() { Stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  void Stop() {
    if (server_ == nullptr) return;
    scheduler_.Stop();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
  }

  v1::JobService::Stub& stub() { return *stub_; }
  v1::WorkerService::Stub& worker_stub() { return *worker_stub_; }
  Scheduler& scheduler() { return scheduler_; }
  SchedulerMetrics& metrics() { return metrics_; }
  int port() const { return port_; }

 private:
  SchedulerMetrics metrics_;
  Scheduler scheduler_;
  JobServiceImpl service_;
  WorkerServiceImpl worker_service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::unique_ptr<v1::WorkerService::Stub> worker_stub_;
};

// A client context with a 10 s deadline, so a broken server fails the test instead of hanging.
inline std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

// Submits `spec`; the new job id ("" and a test failure when refused).
inline std::string SubmitJob(TestServer& server, const v1::JobSpec& spec) {
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  v1::SubmitJobResponse response;
  grpc::Status status = server.stub().SubmitJob(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.job().id();
}

// The job as GetJob answers it (a test failure when that fails).
inline v1::Job GetJob(TestServer& server, const std::string& id) {
  v1::GetJobRequest request;
  request.set_id(id);
  v1::Job job;
  grpc::Status status = server.stub().GetJob(Context().get(), request, &job);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return job;
}

// ValidSpec with `ranks` ranks, `priority` and `max_restarts`.
inline v1::JobSpec RanksSpec(const std::string& name, int ranks, int priority = 0,
                             int max_restarts = 0) {
  v1::JobSpec spec = ValidSpec(name);
  spec.mutable_resources()->set_ranks(ranks);
  spec.set_priority(priority);
  spec.set_max_restarts(max_restarts);
  return spec;
}

// Polls GetJob until `pred` holds (20 s at most).
inline bool WaitJob(TestServer& server, const std::string& id,
                    const std::function<bool(const v1::Job&)>& pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred(GetJob(server, id))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

inline bool WaitState(TestServer& server, const std::string& id, v1::JobState state) {
  return WaitJob(server, id, [&](const v1::Job& j) { return j.state() == state; });
}

// The texts of the lines GetJobLogs answers for `request` (until the stream ends; with follow,
// when the job has ended); fails the test when the call fails.
inline std::vector<std::string> LogTexts(TestServer& server, const v1::GetJobLogsRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = server.stub().GetJobLogs(&context, request);
  v1::GetJobLogsResponse response;
  std::vector<std::string> lines;
  while (reader->Read(&response)) {
    for (const auto& l : response.lines()) lines.push_back(l.text());
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return lines;
}

// The states of the job's events, oldest first.
inline std::vector<v1::JobState> StatesOf(const v1::Job& job) {
  std::vector<v1::JobState> states;
  for (const auto& e : job.events()) states.push_back(e.state());
  return states;
}

}  // namespace dyt::testing
