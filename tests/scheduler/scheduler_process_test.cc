// The real dyt-scheduler binary as a process: it serves grpc.health.v1 and JobService on the
// port it is given, and SIGTERM makes it exit 0 promptly.
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

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/scheduler/service_test_util.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::Context;
using testing::TempDir;
using testing::ValidSpec;

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Waits until 127.0.0.1:port accepts TCP connections (at most `timeout`). A gRPC channel
// whose first connection is refused backs off for seconds, so the test connects only once the
// server listens.
bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// grpc.health.v1.Health/Check for the whole server (an empty HealthCheckRequest), with the
// messages as raw protobuf bytes, since Debian ships no health.proto to generate a stub from.
// Returns the ServingStatus (1 = SERVING) or -1 when the call fails.
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check",
                                   grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::Slice empty;  // an empty HealthCheckRequest: service "" (the whole server)
  grpc::ByteBuffer request(&empty, 1);
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
  std::vector<std::string> args = {DYT_SCHEDULER_BINARY, "--listen", listen, "--data-dir", data_dir,
                                   "--log-level",        "warn"};
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

}  // namespace
}  // namespace dyt
