// The real dyt-scheduler binary as a process: it serves grpc.health.v1 and JobService on the
// port it is given, SIGTERM makes it exit 0 promptly, SIGKILL under load loses no acknowledged
// write, and its /metrics endpoint serves the scheduler's metrics.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/net.h"
#include "tests/scheduler/service_test_util.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::FreePort;
using testing::HttpGet;
using testing::WaitForPort;

using testing::Context;
using testing::TempDir;
using testing::ValidSpec;

// grpc.health.v1.Health/Check for `service` ("": the whole server), with the messages as raw
// protobuf bytes, since Debian ships no health.proto to generate a stub from. Returns the
// ServingStatus (1 = SERVING) or -1 when the call fails (NOT_FOUND for an unknown service).
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "") {
  grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check",
                                   grpc::internal::RpcMethod::NORMAL_RPC);
  // HealthCheckRequest { string service = 1; }: tag 0x0a, a one-byte length, the name.
  std::string encoded;
  if (!service.empty()) encoded = std::string("\x0a") + char(service.size()) + service;
  grpc::Slice body(encoded);
  grpc::ByteBuffer request(&body, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel.get(), method, &context, request, &response);
  if (!status.ok()) {
    return -1;
  }
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse { ServingStatus status = 1; }: tag 0x08, then a one-byte varint.
  if (bytes.empty()) return 0;  // UNKNOWN (the default) is encoded as nothing
  if (bytes.size() != 2 || bytes[0] != 0x08) return -1;
  return bytes[1];
}

TEST(SchedulerProcessTest, HealthServeAndSigterm) {
  TempDir dir;
  int port = FreePort();
  ASSERT_GT(port, 0);
  std::string listen = "127.0.0.1:" + std::to_string(port);
  std::string data_dir = dir.Join("db");
  // posix_spawn, not fork: it runs no pthread_atfork handlers (gRPC installs some).
  std::vector<std::string> args = {
      DYT_SCHEDULER_BINARY, "--listen", listen,      "--data-dir", data_dir,
      "--log-level",        "warn",     "--insecure"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, DYT_SCHEDULER_BINARY, nullptr, nullptr, argv.data(), environ), 0);
  // Whatever happens below, the child does not outlive the test.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};

  ASSERT_TRUE(WaitForPort(port, std::chrono::seconds(10))) << "dyt-scheduler never listened";
  auto channel = grpc::CreateChannel(listen, grpc::InsecureChannelCredentials());
  int health = -1;
  for (int i = 0; i < 100 && health != 1; ++i) {
    health = HealthCheck(channel);
    if (health != 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(health, 1) << "SERVING";
  for (const char* service : {"dyt.v1.JobService", "dyt.v1.WorkerService", "dyt.v1.AuthService"}) {
    EXPECT_EQ(HealthCheck(channel, service), 1) << service;
  }
  EXPECT_EQ(HealthCheck(channel, "dyt.v1.NoSuchService"), -1);

  auto stub = v1::JobService::NewStub(channel);
  v1::SubmitJobRequest request;
  *request.mutable_spec() = ValidSpec("proc");
  v1::SubmitJobResponse response;
  grpc::Status status = stub->SubmitJob(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.job().state(), v1::QUEUED);

  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int wstatus = 0;
  pid_t done = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((done = ::waitpid(pid, &wstatus, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(done, 0) << "dyt-scheduler did not exit within 5 s of SIGTERM";
  ASSERT_EQ(done, pid);
  reaper.pid = 0;
  ASSERT_TRUE(WIFEXITED(wstatus)) << "status " << wstatus;
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);

  // The store was closed cleanly: it opens again and holds the job.
  auto store = testing::OpenStore(data_dir);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->GetJob(response.job().id()).ok());
}

// Starts dyt-scheduler with `args` after the binary; returns its pid (0 on failure).
pid_t Spawn(std::vector<std::string> args) {
  args.insert(args.begin(), DYT_SCHEDULER_BINARY);
  args.push_back("--insecure");  // plaintext, no tokens (tests/security/ covers TLS)
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawn(&pid, DYT_SCHEDULER_BINARY, nullptr, nullptr, argv.data(), environ) != 0) {
    return 0;
  }
  return pid;
}

struct Reaper {
  pid_t pid = 0;
  ~Reaper() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

TEST(SchedulerProcessTest, SigkillUnderLoadLosesNoAcknowledgedJob) {
  TempDir dir;
  int port = FreePort();
  ASSERT_GT(port, 0);
  std::string listen = "127.0.0.1:" + std::to_string(port);
  std::string data_dir = dir.Join("db");
  Reaper first{Spawn({"--listen", listen, "--data-dir", data_dir, "--log-level", "warn"})};
  ASSERT_GT(first.pid, 0);
  ASSERT_TRUE(WaitForPort(port, std::chrono::seconds(10)));

  // Eight clients submit (and cancel every third job) as fast as they can; every OK answer is
  // recorded with the state it acknowledged.
  std::mutex mu;
  std::map<std::string, v1::JobState> acknowledged;
  std::set<std::string> cancel_in_flight;  // sent, not answered: either state is right
  std::atomic<bool> stop{false};
  std::atomic<int> ops{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      auto channel = grpc::CreateChannel(listen, grpc::InsecureChannelCredentials());
      auto stub = v1::JobService::NewStub(channel);
      for (int i = 0; !stop; ++i) {
        v1::SubmitJobRequest request;
        *request.mutable_spec() = ValidSpec("load-" + std::to_string(c) + "-" + std::to_string(i));
        v1::SubmitJobResponse response;
        if (!stub->SubmitJob(Context().get(), request, &response).ok()) break;
        std::string id = response.job().id();
        {
          std::lock_guard lock(mu);
          acknowledged[id] = v1::QUEUED;
        }
        ++ops;
        if (i % 3 == 0) {
          v1::CancelJobRequest cancel;
          cancel.set_id(id);
          v1::Job job;
          {
            std::lock_guard lock(mu);
            cancel_in_flight.insert(id);
          }
          if (!stub->CancelJob(Context().get(), cancel, &job).ok()) break;
          std::lock_guard lock(mu);
          cancel_in_flight.erase(id);
          acknowledged[id] = job.state();
        }
      }
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ops < 300 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::kill(first.pid, SIGKILL), 0);
  ::waitpid(first.pid, nullptr, 0);
  first.pid = 0;
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_GE(acknowledged.size(), 100u) << "too few submissions before the kill";

  int port2 = FreePort();
  std::string listen2 = "127.0.0.1:" + std::to_string(port2);
  Reaper second{Spawn({"--listen", listen2, "--data-dir", data_dir, "--log-level", "warn"})};
  ASSERT_GT(second.pid, 0);
  ASSERT_TRUE(WaitForPort(port2, std::chrono::seconds(10)));
  auto stub =
      v1::JobService::NewStub(grpc::CreateChannel(listen2, grpc::InsecureChannelCredentials()));
  int cancelled = 0;
  for (const auto& [id, state] : acknowledged) {
    v1::GetJobRequest get;
    get.set_id(id);
    v1::Job job;
    grpc::Status status = stub->GetJob(Context().get(), get, &job);
    ASSERT_TRUE(status.ok()) << id << ": " << status.error_message();
    if (cancel_in_flight.count(id) > 0 && job.state() == v1::CANCELLED) continue;
    EXPECT_EQ(job.state(), state) << id;
    cancelled += state == v1::CANCELLED;
  }
  EXPECT_GT(cancelled, 0);
  // The restarted scheduler lists them all too (paging through everything).
  size_t listed = 0;
  std::string token;
  do {
    v1::ListJobsRequest list;
    list.set_page_size(1000);
    list.set_page_token(token);
    v1::ListJobsResponse page;
    ASSERT_TRUE(stub->ListJobs(Context().get(), list, &page).ok());
    listed += size_t(page.jobs_size());
    token = page.next_page_token();
  } while (!token.empty());
  EXPECT_GE(listed, acknowledged.size());
}

TEST(SchedulerProcessTest, MetricsEndpointServesSchedulerMetrics) {
  TempDir dir;
  int port = FreePort();
  int metrics_port = FreePort();
  ASSERT_GT(port, 0);
  ASSERT_GT(metrics_port, 0);
  std::string listen = "127.0.0.1:" + std::to_string(port);
  Reaper scheduler{Spawn({"--listen", listen, "--data-dir", dir.Join("db"), "--metrics-listen",
                          "127.0.0.1:" + std::to_string(metrics_port), "--log-level", "warn"})};
  ASSERT_TRUE(WaitForPort(port, std::chrono::seconds(10)));
  auto stub =
      v1::JobService::NewStub(grpc::CreateChannel(listen, grpc::InsecureChannelCredentials()));
  v1::SubmitJobRequest request;
  *request.mutable_spec() = ValidSpec("metered");
  v1::SubmitJobResponse response;
  ASSERT_TRUE(stub->SubmitJob(Context().get(), request, &response).ok());
  v1::GetJobRequest missing;
  missing.set_id("job-000000000404");
  v1::Job job;
  EXPECT_EQ(stub->GetJob(Context().get(), missing, &job).error_code(), grpc::StatusCode::NOT_FOUND);

  {  // a stream: counted apart, not timed with the unary calls
    v1::GetJobLogsRequest logs;
    logs.set_id(response.job().id());
    auto context = Context();
    auto reader = stub->GetJobLogs(context.get(), logs);
    v1::GetJobLogsResponse part;
    while (reader->Read(&part)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
  }
  std::string body;
  for (int i = 0; i < 50; ++i) {
    body = HttpGet(metrics_port, "/metrics").body;
    if (body.find("dyt_scheduler_queue_depth 1") != std::string::npos &&
        body.find("dyt_scheduler_streams_total{") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const char* expected : {
           "dyt_scheduler_submissions_total 1",
           "dyt_scheduler_jobs{state=\"QUEUED\"} 1",
           "dyt_scheduler_queue_depth 1",
           "dyt_scheduler_rpcs_total{code=\"OK\",method=\"SubmitJob\"} 1",
           "dyt_scheduler_rpcs_total{code=\"NOT_FOUND\",method=\"GetJob\"} 1",
           "dyt_scheduler_rpc_duration_seconds_bucket{method=\"SubmitJob\",le=\"+Inf\"} 1",
           "dyt_scheduler_streams_total{code=\"OK\",method=\"GetJobLogs\"} 1",
           "dyt_scheduler_workers{state=\"connected\"} 0",
           "dyt_scheduler_slots{kind=\"cpu\",state=\"total\"} 0",
       }) {
    EXPECT_NE(body.find(expected), std::string::npos) << expected << "\n" << body;
  }
  EXPECT_EQ(body.find("method=\"GetJobLogs\",le="), std::string::npos) << "not timed";
  EXPECT_EQ(body.find("dyt_scheduler_rpcs_total{code=\"OK\",method=\"GetJobLogs\"}"),
            std::string::npos);
  // The queued job's wait, by the slot kind it asks for; the other kind has none waiting.
  const std::string kind = request.spec().resources().kind();
  const std::string other = kind == "cpu" ? "gpu" : "cpu";
  auto value = [&](const std::string& k) {
    const std::string name = "\ndyt_scheduler_oldest_queued_job_age_seconds{kind=\"" + k + "\"} ";
    const size_t at = body.find(name);
    return at == std::string::npos ? -1.0 : std::atof(body.c_str() + at + name.size());
  };
  for (int i = 0; i < 50 && value(kind) < 1.5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    body = HttpGet(metrics_port, "/metrics").body;
  }
  EXPECT_GE(value(kind), 1.5) << body;
  EXPECT_LT(value(kind), 60) << body;
  EXPECT_EQ(value(other), 0) << body;
}

}  // namespace
}  // namespace dyt
