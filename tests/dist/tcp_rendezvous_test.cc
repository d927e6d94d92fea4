// The TCP rendezvous end to end: DYT_RDZV=HOST:PORT in the environment of a rank, Gloo ranks
// (dist_test_worker processes) meeting through a TcpKvStoreServer, and dyt-launch serving the
// store on node rank 0 for a 2-"machine" job simulated with two launchers on loopback.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/dist/subprocess.h"
#include "trainer/dist/make_communicator.h"
#include "trainer/dist/tcp_kv_store.h"

namespace dyt::dist {
namespace {

using std::chrono::milliseconds;
using testing::ExitInfo;
using testing::ReadFile;
using testing::Spawn;
using testing::TempDir;
using testing::WaitFor;

// A loopback port nobody listens on (bound and released; see tcp_kv_store_test.cc).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---- DYT_RDZV=HOST:PORT ---------------------------------------------------------------------

const char* const kVars[] = {"DYT_RANK",    "DYT_WORLD_SIZE", "DYT_LOCAL_RANK",    "DYT_RDZV",
                             "DYT_RDZV_ID", "DYT_DIST_HOST",  "DYT_DIST_TIMEOUT_S"};

class TcpDistEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVars) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      ::unsetenv(name);
    }
    ::setenv("DYT_RANK", "1", 1);
    ::setenv("DYT_WORLD_SIZE", "2", 1);
    ::setenv("DYT_RDZV_ID", "job.attempt0", 1);
  }
  void TearDown() override {
    for (const char* name : kVars) ::unsetenv(name);
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
  }
  std::map<std::string, std::string> saved_;
};

TEST_F(TcpDistEnvTest, AcceptsHostPortAndDirectories) {
  for (const char* rdzv :
       {"127.0.0.1:29500", "tcp://node0:1", "[::1]:29500", "/shared/rdzv", "./node0:29500"}) {
    ::setenv("DYT_RDZV", rdzv, 1);
    auto env = DistEnvFromEnvironment();
    ASSERT_TRUE(env.ok()) << rdzv << ": " << env.status().ToString();
    EXPECT_EQ(env->rdzv, rdzv);
  }
}

TEST_F(TcpDistEnvTest, RefusesABadHostPortNamingTheVariable) {
  for (const char* rdzv : {"127.0.0.1:0", "node0:65536", "tcp://node0", "tcp://a:1/b"}) {
    ::setenv("DYT_RDZV", rdzv, 1);
    auto env = DistEnvFromEnvironment();
    ASSERT_FALSE(env.ok()) << rdzv;
    EXPECT_EQ(env.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(env.status().message().find("DYT_RDZV"), std::string::npos) << env.status().message();
    EXPECT_NE(env.status().message().find(rdzv), std::string::npos) << env.status().message();
  }
  DistEnv env;
  env.world_size = 2;
  env.job = "j";
  env.rdzv = "h:0";
  EXPECT_EQ(ValidateDistEnv(env).code(), StatusCode::kInvalidArgument);
}

TEST(TcpRendezvousTest, NoServerIsUnavailableNamingTheAddress) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.job = "lonely";
  env.rdzv = "127.0.0.1:" + std::to_string(port);
  env.timeout = milliseconds(300);
  auto comm = MakeHostCommunicator(env);
  ASSERT_EQ(comm.status().code(), StatusCode::kUnavailable) << comm.status().ToString();
  EXPECT_NE(comm.status().message().find(env.rdzv), std::string::npos) << comm.status().message();
}

// ---- Gloo ranks through a TcpKvStoreServer --------------------------------------------------

TEST(TcpRendezvousTest, TwoGlooProcessesMeetThroughATcpStore) {
  TempDir dir;
  auto server = TcpKvStoreServer::Start("127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string address = "127.0.0.1:" + std::to_string((*server)->port());
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    pids.push_back(Spawn(
        {DYT_DIST_TEST_WORKER, "collectives", dir.path()},
        {"DYT_RANK=" + std::to_string(r), "DYT_WORLD_SIZE=2", "DYT_LOCAL_RANK=" + std::to_string(r),
         // Both spellings of the address.
         "DYT_RDZV=" + std::string(r == 0 ? "" : "tcp://") + address, "DYT_RDZV_ID=tcp.attempt0",
         "DYT_DIST_TIMEOUT_S=10"},
        dir.path() + "/stderr." + std::to_string(r)));
  }
  for (int r = 0; r < 2; ++r) {
    const ExitInfo e = WaitFor(pids[r], milliseconds(14000));
    EXPECT_TRUE(e.finished) << "rank " << r << " still running after 14 s";
    EXPECT_TRUE(e.exited && e.code == 0)
        << "rank " << r << " exit " << e.code << " signal " << e.signal << ": "
        << ReadFile(dir.path() + "/rank" + std::to_string(r) + ".txt").value_or("(no report)")
        << ReadFile(dir.path() + "/stderr." + std::to_string(r)).value_or("");
  }
  const auto a = ReadFile(dir.path() + "/rank0.bin");
  const auto b = ReadFile(dir.path() + "/rank1.bin");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(*a == *b);
  EXPECT_NE(ReadFile(dir.path() + "/rank0.txt").value_or("").find("ok backend=gloo world=2"),
            std::string::npos);
  const TcpKvStoreServer::Stats stats = (*server)->stats();
  EXPECT_GE(stats.keys, 2u);  // each rank's address
  EXPECT_EQ(stats.bad_frames, 0u);
  std::printf("[ info ] store: %llu keys, %llu requests, %llu connections\n",
              static_cast<unsigned long long>(stats.keys),
              static_cast<unsigned long long>(stats.requests),
              static_cast<unsigned long long>(stats.connections));
}

// ---- dyt-launch --rdzv HOST:PORT ------------------------------------------------------------

// dyt-launch for node `node_rank` of a 2-node job of one rank each, rendezvous at `address`.
pid_t LaunchNode(const TempDir& dir, int node_rank, const std::string& address,
                 const std::string& timeout_s, const std::vector<std::string>& program) {
  std::vector<std::string> argv = {DYT_LAUNCH_BINARY,
                                   "--nproc",
                                   "1",
                                   "--nnodes",
                                   "2",
                                   "--node-rank",
                                   std::to_string(node_rank),
                                   "--rdzv",
                                   address,
                                   "--host",
                                   "127.0.0.1",
                                   "--timeout-s",
                                   timeout_s,
                                   "--"};
  argv.insert(argv.end(), program.begin(), program.end());
  return Spawn(argv, {"OUT=" + dir.path()},
               dir.path() + "/node" + std::to_string(node_rank) + ".stderr");
}

std::string NodeStderr(const TempDir& dir, int node_rank) {
  return ReadFile(dir.path() + "/node" + std::to_string(node_rank) + ".stderr").value_or("");
}

TEST(DytLaunchTcpTest, TwoLaunchersMeetThroughNodeZerosServer) {
  TempDir dir;
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::vector<std::string> worker = {DYT_DIST_TEST_WORKER, "collectives", dir.path()};
  // Node 1 first: its rank must wait for node 0's server to come up.
  const pid_t node1 = LaunchNode(dir, 1, address, "10", worker);
  std::this_thread::sleep_for(milliseconds(500));
  const pid_t node0 = LaunchNode(dir, 0, address, "10", worker);
  const ExitInfo e0 = WaitFor(node0, milliseconds(14000));
  const ExitInfo e1 = WaitFor(node1, milliseconds(5000));
  EXPECT_TRUE(e0.exited && e0.code == 0) << "node 0: " << e0.code << "\n" << NodeStderr(dir, 0);
  EXPECT_TRUE(e1.exited && e1.code == 0) << "node 1: " << e1.code << "\n" << NodeStderr(dir, 1);
  EXPECT_NE(NodeStderr(dir, 0).find("rendezvous server listening on " + address), std::string::npos)
      << NodeStderr(dir, 0);
  const auto a = ReadFile(dir.path() + "/rank0.bin");
  const auto b = ReadFile(dir.path() + "/rank1.bin");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(*a == *b);
  // Node 0's server is gone with its launcher: the port is free again.
  auto again = TcpKvStoreServer::Start("127.0.0.1", port);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(DytLaunchTcpTest, WithoutNodeZeroTheRankFailsNamingTheAddress) {
  TempDir dir;
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const pid_t node1 =
      LaunchNode(dir, 1, address, "1", {DYT_DIST_TEST_WORKER, "collectives", dir.path()});
  const ExitInfo e = WaitFor(node1, milliseconds(8000));
  ASSERT_TRUE(e.finished);
  EXPECT_EQ(e.code, 66) << NodeStderr(dir, 1);  // dist_test_worker: communicator not created
  const std::string why = ReadFile(dir.path() + "/create_failed.1").value_or("");
  EXPECT_NE(why.find("UNAVAILABLE"), std::string::npos) << why;
  EXPECT_NE(why.find(address), std::string::npos) << why;
  EXPECT_LT(e.seconds, 5.0);
}

TEST(DytLaunchTcpTest, NodeZeroRefusesAPortInUse) {
  TempDir dir;
  auto taken = TcpKvStoreServer::Start("127.0.0.1", 0);
  ASSERT_TRUE(taken.ok());
  const std::string address = "127.0.0.1:" + std::to_string((*taken)->port());
  const ExitInfo e = WaitFor(LaunchNode(dir, 0, address, "1", {"/bin/true"}), milliseconds(5000));
  EXPECT_EQ(e.code, 1) << NodeStderr(dir, 0);
  EXPECT_NE(NodeStderr(dir, 0).find("cannot listen on " + address), std::string::npos)
      << NodeStderr(dir, 0);
}

TEST(DytLaunchTcpTest, OneMachineWithAnyPortServesItsRanks) {
  TempDir dir;
  // Each rank publishes a key through the launcher's server and reads the other's.
  const std::string script =
      "\"$TOOL\" set \"$DYT_RDZV\" r.$DYT_LOCAL_RANK hello.$DYT_LOCAL_RANK 2000 && "
      "\"$TOOL\" get \"$DYT_RDZV\" r.$((1 - DYT_LOCAL_RANK)) 5000 2000 "
      "\"$OUT/got.$DYT_LOCAL_RANK\" "
      "&& echo \"$DYT_RDZV\" > \"$OUT/rdzv.$DYT_LOCAL_RANK\"";
  const pid_t pid = Spawn({DYT_LAUNCH_BINARY, "--nproc", "2", "--rdzv", "tcp://127.0.0.1:0", "--",
                           "/bin/sh", "-c", script},
                          {"OUT=" + dir.path(), std::string("TOOL=") + DYT_TCP_KV_TOOL},
                          dir.path() + "/launch.stderr");
  const ExitInfo e = WaitFor(pid, milliseconds(10000));
  const std::string err = ReadFile(dir.path() + "/launch.stderr").value_or("");
  ASSERT_TRUE(e.exited && e.code == 0) << e.code << "\n" << err;
  for (int local = 0; local < 2; ++local) {
    EXPECT_EQ(ReadFile(dir.path() + "/got." + std::to_string(local)).value_or(""),
              "OK\nhello." + std::to_string(1 - local));
    const std::string rdzv = ReadFile(dir.path() + "/rdzv." + std::to_string(local)).value_or("");
    EXPECT_EQ(rdzv.rfind("127.0.0.1:", 0), 0u) << rdzv;
    EXPECT_NE(rdzv, "127.0.0.1:0\n") << rdzv;
  }
}

TEST(DytLaunchTcpTest, RejectsBadAddresses) {
  TempDir dir;
  const auto code = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {DYT_LAUNCH_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return WaitFor(Spawn(argv, {}, dir.path() + "/err"), milliseconds(5000)).code;
  };
  // Port 0 with several machines: the others could not know the port.
  EXPECT_EQ(code({"--nproc", "1", "--nnodes", "2", "--node-rank", "0", "--rdzv", "127.0.0.1:0",
                  "--", "/bin/true"}),
            2);
  EXPECT_NE(ReadFile(dir.path() + "/err").value_or("").find("port 0"), std::string::npos);
  EXPECT_EQ(code({"--nproc", "2", "--rdzv", "127.0.0.1:65536", "--", "/bin/true"}), 2);
  EXPECT_EQ(code({"--nproc", "2", "--rdzv", "tcp://nohost", "--", "/bin/true"}), 2);
}

}  // namespace
}  // namespace dyt::dist
