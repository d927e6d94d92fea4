// Helpers for the observability tests: loopback ports, a minimal HTTP/1.0 GET client (for
// /metrics and Prometheus' HTTP API), running a shell command with its output, and a live
// cluster fixture: dyt-scheduler and one CPU dyt-worker as real processes with their metrics
// endpoints, and a long training job (test preset, synthetic data) that logs every step,
// evaluates and checkpoints every 5 steps, so every per-job series exists while it runs.
#pragma once

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dyt/v1/job_service.grpc.pb.h"
#include "tests/common/net.h"
#include "tests/dist/subprocess.h"

namespace dyt::obs::testing {

using ::dyt::testing::Eventually;
using ::dyt::testing::FreePort;
using ::dyt::testing::HttpGet;
using ::dyt::testing::HttpResponse;

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Percent-encodes everything but RFC 3986 unreserved characters (for a query parameter).
inline std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

struct CommandResult {
  int code = -1;       // exit status (-1: did not run or was killed)
  std::string output;  // stdout and stderr
};

// Runs `command` with /bin/sh, stderr merged into stdout.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  return r;
}

// The scheduler and one CPU worker with metrics endpoints, and one long job on the worker.
class LiveCluster : public ::testing::Test {
 protected:
  void TearDown() override {
    for (pid_t* pid : {&worker_, &scheduler_}) {
      if (*pid > 0) {
        ::kill(*pid, SIGTERM);
        dist::testing::WaitFor(*pid, seconds(20));
        *pid = -1;
      }
    }
  }

  // Starts both processes and waits until the worker has registered.
  void StartCluster() {
    port_ = FreePort();
    scheduler_metrics_port_ = FreePort();
    worker_metrics_port_ = FreePort();
    ASSERT_GT(port_, 0);
    ASSERT_GT(scheduler_metrics_port_, 0);
    ASSERT_GT(worker_metrics_port_, 0);
    const std::string address = "127.0.0.1:" + std::to_string(port_);
    scheduler_ = dist::testing::Spawn(
        {DYT_SCHEDULER_BINARY, "--listen", address, "--data-dir", dir_.Join("state"),
         "--artifact-root", dir_.Join("artifacts"), "--metrics-listen",
         "127.0.0.1:" + std::to_string(scheduler_metrics_port_), "--heartbeat-interval-s", "0.3",
         "--heartbeat-timeout-s", "5", "--stop-grace-s", "5", "--insecure"},
        {}, dir_.Join("scheduler.log"));
    ASSERT_GT(scheduler_, 0);
    channel_ = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    // A peak of 1 TFLOP/s per CPU slot (above any one core), so that dyt_job_mfu_ratio exists
    // and lies in (0, 1).
    worker_ = dist::testing::Spawn(
        {DYT_WORKER_BINARY, "--scheduler", address, "--worker-id", "w1", "--cpu-slots", "1",
         "--work-dir", dir_.Join("work"), "--trainer", DYT_TRAIN_BINARY, "--metrics-listen",
         "127.0.0.1:" + std::to_string(worker_metrics_port_), "--peak-flops", "1e12",
         "--stop-grace-s", "5"},
        {"OMP_NUM_THREADS=1"}, dir_.Join("worker.log"));
    ASSERT_GT(worker_, 0);
    ASSERT_TRUE(Eventually(
        [&] {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
          v1::ListWorkersRequest req;
          v1::ListWorkersResponse resp;
          return jobs_->ListWorkers(&ctx, req, &resp).ok() && resp.workers_size() == 1;
        },
        seconds(30)))
        << Logs();
  }

  // Submits a job long enough to outlive the test; returns its id.
  std::string SubmitLongJob() {
    v1::JobSpec s;
    s.set_name("observability-test");
    s.set_owner("tester");
    s.mutable_model()->set_preset("test");
    s.mutable_data()->set_synthetic(true);
    s.mutable_train()->set_steps(1000000);
    s.mutable_train()->set_batch_size(2);
    s.mutable_train()->set_log_every(1);
    s.mutable_train()->set_eval_every(5);
    s.mutable_train()->set_eval_batches(1);
    s.mutable_resources()->set_ranks(1);
    s.mutable_resources()->set_slots_per_rank(1);
    s.mutable_resources()->set_kind("cpu");
    s.mutable_checkpoint()->set_every_steps(5);
    s.mutable_checkpoint()->set_keep_last(1);
    grpc::ClientContext ctx;
    v1::SubmitJobRequest req;
    *req.mutable_spec() = s;
    v1::SubmitJobResponse resp;
    const grpc::Status st = jobs_->SubmitJob(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.job().id();
  }

  v1::Job GetJob(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(5));
    v1::GetJobRequest req;
    req.set_id(id);
    v1::Job job;
    jobs_->GetJob(&ctx, req, &job);
    return job;
  }

  bool CancelJob(const std::string& id) {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_id(id);
    v1::Job job;
    return jobs_->CancelJob(&ctx, req, &job).ok();
  }

  // Waits until the job has checkpointed and evaluated (so every per-job series exists).
  ::testing::AssertionResult WaitTrainedAndCheckpointed(const std::string& id) {
    v1::Job job;
    const bool ok = Eventually(
        [&] {
          job = GetJob(id);
          return (job.last_checkpoint_step() >= 5 && job.progress().val_loss() > 0) ||
                 job.state() == v1::FAILED || job.state() == v1::CANCELLED;
        },
        seconds(60));
    if (ok && job.state() == v1::RUNNING) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "job " << id << ": " << job.DebugString() << Logs();
  }

  std::string Logs() const {
    std::string out;
    for (const char* name : {"scheduler.log", "worker.log", "prometheus.log"}) {
      std::string text = dist::testing::ReadFile(dir_.Join(name)).value_or("");
      if (text.size() > 4000) text = text.substr(text.size() - 4000);
      if (!text.empty()) out += std::string("\n--- ") + name + "\n" + text;
    }
    return out;
  }

  dyt::testing::TempDir dir_;
  int port_ = 0;
  int scheduler_metrics_port_ = 0;
  int worker_metrics_port_ = 0;
  pid_t scheduler_ = -1;
  pid_t worker_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
};

}  // namespace dyt::obs::testing
