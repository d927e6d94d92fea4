// GlooCommunicator across real processes: every collective bit-exact against a local reference
// and identical on every rank (2 and 3 ranks), a peer killed or stopped mid-run, a peer that
// never arrives. The ranks are dist_test_worker processes rendezvousing through a FileKvStore.
#include "trainer/dist/gloo_communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/dist/subprocess.h"
#include "trainer/dist/file_kv_store.h"

namespace dyt::dist {
namespace {

using std::chrono::milliseconds;
using testing::ExitInfo;
using testing::ReadFile;
using testing::Spawn;
using testing::TempDir;
using testing::WaitFor;

std::vector<std::string> RankEnv(const std::string& rdzv, int rank, int world,
                                 const std::string& timeout_s) {
  return {"DYT_RANK=" + std::to_string(rank),
          "DYT_WORLD_SIZE=" + std::to_string(world),
          "DYT_LOCAL_RANK=" + std::to_string(rank),
          "DYT_RDZV=" + rdzv,
          "DYT_RDZV_ID=test.attempt0",
          "DYT_DIST_TIMEOUT_S=" + timeout_s};
}

// Starts `world` workers in `mode`, each writing into dir; returns their pids.
std::vector<pid_t> StartWorkers(const TempDir& dir, const std::string& mode, int world,
                                const std::string& timeout_s) {
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    pids.push_back(Spawn({DYT_DIST_TEST_WORKER, mode, dir.path()},
                         RankEnv(dir.path() + "/rdzv", r, world, timeout_s),
                         dir.path() + "/stderr." + std::to_string(r)));
  }
  return pids;
}

std::string Stderr(const TempDir& dir, int rank) {
  return ReadFile(dir.path() + "/stderr." + std::to_string(rank)).value_or("(no stderr)");
}

void RunCollectivesAcross(int world) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::vector<pid_t> pids = StartWorkers(dir, "collectives", world, "10");
  for (int r = 0; r < world; ++r) {
    const ExitInfo e = WaitFor(pids[r], milliseconds(14000));
    EXPECT_TRUE(e.finished) << "rank " << r << " still running after 14 s";
    EXPECT_TRUE(e.exited && e.code == 0)
        << "rank " << r << " exit " << e.code << " signal " << e.signal << ": "
        << ReadFile(dir.path() + "/rank" + std::to_string(r) + ".txt").value_or("(no report)")
        << Stderr(dir, r);
  }
  // Every rank's results, byte for byte, are rank 0's.
  const auto first = ReadFile(dir.path() + "/rank0.bin");
  ASSERT_TRUE(first.has_value());
  EXPECT_GT(first->size(), 4u << 20);
  for (int r = 1; r < world; ++r) {
    const auto other = ReadFile(dir.path() + "/rank" + std::to_string(r) + ".bin");
    ASSERT_TRUE(other.has_value());
    EXPECT_TRUE(*other == *first) << "rank " << r << " results differ from rank 0's";
  }
  const std::string report = ReadFile(dir.path() + "/rank0.txt").value_or("");
  EXPECT_NE(report.find("ok backend=gloo world=" + std::to_string(world)), std::string::npos)
      << report;
  if (world > 2) {
    // The data really tests the order: another summation order gives other bits somewhere.
    EXPECT_EQ(report.find("order_matters=0"), std::string::npos) << report;
  }
}

TEST(GlooCommunicatorTest, TwoProcessesRunEveryCollectiveBitExact) { RunCollectivesAcross(2); }

TEST(GlooCommunicatorTest, ThreeProcessesRunEveryCollectiveBitExact) { RunCollectivesAcross(3); }

struct Failure {
  std::string code;
  int64_t at_ms = 0;
  std::string next_code;
  std::string message;
};

Failure ReadFailure(const TempDir& dir, int rank) {
  Failure f;
  const auto text = ReadFile(dir.path() + "/fail." + std::to_string(rank));
  if (!text) return f;
  const std::vector<std::string> lines = testing::Lines(*text);
  if (lines.size() < 4) return f;
  f.code = lines[0];
  f.at_ms = std::stoll(lines[1]);
  f.next_code = lines[2];
  f.message = lines[3];
  return f;
}

TEST(GlooCommunicatorTest, KilledPeerFailsTheSurvivorWithinTheTimeout) {
  TempDir dir;
  const std::vector<pid_t> pids = StartWorkers(dir, "loop", 2, "5");
  ASSERT_TRUE(testing::WaitForFile(dir.path() + "/ready.0", milliseconds(8000))) << Stderr(dir, 0);
  ASSERT_TRUE(testing::WaitForFile(dir.path() + "/ready.1", milliseconds(8000))) << Stderr(dir, 1);
  std::this_thread::sleep_for(milliseconds(100));  // both are deep in the AllReduce loop now
  const int64_t killed_at = testing::MonotonicMs();
  ASSERT_EQ(::kill(pids[1], SIGKILL), 0);
  const ExitInfo dead = WaitFor(pids[1], milliseconds(2000));
  EXPECT_EQ(dead.signal, SIGKILL);

  const ExitInfo survivor = WaitFor(pids[0], milliseconds(9000));
  ASSERT_TRUE(survivor.finished) << "the survivor hung";
  ASSERT_TRUE(survivor.exited && survivor.code == 0)
      << "exit " << survivor.code << " signal " << survivor.signal << ": " << Stderr(dir, 0);
  const Failure f = ReadFailure(dir, 0);
  EXPECT_TRUE(f.code == "UNAVAILABLE" || f.code == "DEADLINE_EXCEEDED") << f.code;
  EXPECT_NE(f.message.find("AllReduce"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("rank 1"), std::string::npos) << f.message;
  const int64_t took = f.at_ms - killed_at;
  EXPECT_LT(took, 5000 + 1000) << f.message;
  std::printf("[ info ] survivor failed %lld ms after the SIGKILL with %s: %s\n",
              static_cast<long long>(took), f.code.c_str(), f.message.c_str());
  // Broken for good: the next call fails at once.
  EXPECT_EQ(f.next_code, "FAILED_PRECONDITION");
}

TEST(GlooCommunicatorTest, StoppedPeerTimesOutTheSurvivor) {
  TempDir dir;
  const std::vector<pid_t> pids = StartWorkers(dir, "loop", 2, "2");
  ASSERT_TRUE(testing::WaitForFile(dir.path() + "/ready.0", milliseconds(8000))) << Stderr(dir, 0);
  ASSERT_TRUE(testing::WaitForFile(dir.path() + "/ready.1", milliseconds(8000))) << Stderr(dir, 1);
  std::this_thread::sleep_for(milliseconds(100));
  // A stopped process keeps its sockets open: only the timeout can tell.
  const int64_t stopped_at = testing::MonotonicMs();
  ASSERT_EQ(::kill(pids[1], SIGSTOP), 0);
  const ExitInfo survivor = WaitFor(pids[0], milliseconds(8000));
  ::kill(pids[1], SIGKILL);
  WaitFor(pids[1], milliseconds(2000));
  ASSERT_TRUE(survivor.finished) << "the survivor hung";
  ASSERT_TRUE(survivor.exited && survivor.code == 0)
      << "exit " << survivor.code << " signal " << survivor.signal << ": " << Stderr(dir, 0);
  const Failure f = ReadFailure(dir, 0);
  EXPECT_EQ(f.code, "DEADLINE_EXCEEDED") << f.message;
  EXPECT_NE(f.message.find("rank 1"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("2000 ms"), std::string::npos) << f.message;
  const int64_t took = f.at_ms - stopped_at;
  EXPECT_LT(took, 2000 + 1500) << f.message;
  std::printf("[ info ] survivor failed %lld ms after the SIGSTOP with %s: %s\n",
              static_cast<long long>(took), f.code.c_str(), f.message.c_str());
}

TEST(GlooCommunicatorTest, PeerThatNeverArrivesFailsCreateNamingItsKey) {
  TempDir dir;
  auto store = FileKvStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  GlooOptions options;
  options.timeout = milliseconds(1000);
  for (int rank : {0, 1}) {
    const std::string prefix = "lonely" + std::to_string(rank);
    const auto start = std::chrono::steady_clock::now();
    auto comm = GlooCommunicator::Create(**store, prefix, rank, 2, options);
    const auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(comm.ok());
    EXPECT_EQ(comm.status().code(), StatusCode::kDeadlineExceeded) << comm.status().ToString();
    // Rank 1 first waits for rank 0's world size; rank 0 for Gloo's keys of rank 1 ("rank_1"
    // and "1"). Either way the message names the missing peer's key.
    const std::string& msg = comm.status().message();
    if (rank == 1) {
      EXPECT_NE(msg.find("'" + prefix + ".world_size'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("waiting for rank 0"), std::string::npos) << msg;
    } else {
      EXPECT_TRUE(msg.find("'" + prefix + ".gloo.rank_1'") != std::string::npos ||
                  msg.find("'" + prefix + ".gloo.1'") != std::string::npos)
          << comm.status().ToString();
    }
    EXPECT_GE(waited, milliseconds(1000));
    EXPECT_LT(waited, milliseconds(3000));
  }
}

// Ranks started for different world sizes are told so, naming the variable, instead of
// Gloo's "enforce fail ... 136 vs 272".
TEST(GlooCommunicatorTest, RanksOfDifferentWorldSizesAreToldSo) {
  TempDir dir;
  auto store = FileKvStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  GlooOptions options;
  options.timeout = milliseconds(2000);
  std::thread rank0([&] { (void)GlooCommunicator::Create(**store, "mixed", 0, 2, options); });
  auto rank1 = GlooCommunicator::Create(**store, "mixed", 1, 3, options);
  rank0.join();
  ASSERT_FALSE(rank1.ok());
  EXPECT_EQ(rank1.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(rank1.status().message(),
            "DYT_WORLD_SIZE: this rank (1) was started for 3 ranks, rank 0 for 2 (rendezvous "
            "prefix 'mixed'); every rank of a run needs the same world size");
}

TEST(GlooCommunicatorTest, WorldOfOneNeedsNoPeer) {
  TempDir dir;
  auto store = FileKvStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  auto comm = GlooCommunicator::Create(**store, "solo", 0, 1, GlooOptions{});
  ASSERT_TRUE(comm.ok()) << comm.status().ToString();
  std::vector<float> buf = {1.5f, -2.0f}, gathered(2, 0.0f), scattered(2, 0.0f);
  ASSERT_TRUE((*comm)->AllReduce(buf.data(), 2, ReduceOp::kAvg).ok());
  EXPECT_EQ(buf, (std::vector<float>{1.5f, -2.0f}));
  ASSERT_TRUE((*comm)->AllGather(buf.data(), gathered.data(), 2).ok());
  EXPECT_EQ(gathered, buf);
  ASSERT_TRUE((*comm)->ReduceScatter(buf.data(), scattered.data(), 2, ReduceOp::kSum).ok());
  EXPECT_EQ(scattered, buf);
  ASSERT_TRUE((*comm)->Broadcast(buf.data(), 2, 0).ok());
  ASSERT_TRUE((*comm)->Barrier().ok());
  EXPECT_EQ((*comm)->Broadcast(buf.data(), 2, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*comm)->AllReduce(nullptr, 3, ReduceOp::kSum).code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ((*comm)->backend_name(), "gloo");
}

TEST(GlooCommunicatorTest, CreateRejectsBadArguments) {
  TempDir dir;
  auto store = FileKvStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  GlooOptions options;
  options.timeout = milliseconds(100);
  EXPECT_EQ(GlooCommunicator::Create(**store, "p", 2, 2, options).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(GlooCommunicator::Create(**store, "p", 0, 0, options).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(GlooCommunicator::Create(**store, "bad/prefix", 0, 2, options).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(GlooCommunicator::Create(**store, "", 0, 2, options).status().code(),
            StatusCode::kInvalidArgument);
  options.timeout = milliseconds(0);
  EXPECT_EQ(GlooCommunicator::Create(**store, "p", 0, 2, options).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dyt::dist
