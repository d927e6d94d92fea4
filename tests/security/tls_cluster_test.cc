// End to end with TLS and tokens on: the real dyt-scheduler (TLS), two real dyt-worker daemons
// with their own worker tokens (--ca-file/--token-file), and a 2-rank dyt-train job whose ranks
// meet through the scheduler's rendezvous over TLS with their worker's token.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/common/net.h"
#include "tests/security/secure_scheduler.h"

namespace dyt::security_testing {
namespace {

class TlsClusterTest : public SecurityTest {
 protected:
  void TearDown() override {
    for (pid_t pid : workers_) {
      ::kill(pid, SIGTERM);
      auto deadline = std::chrono::steady_clock::now() + seconds(20);
      while (::waitpid(pid, nullptr, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    SecurityTest::TearDown();
    for (const auto& id : ids_) {
      std::string log = ReadText(dir_.Join(id + ".err"));
      for (const auto& t : tokens_) EXPECT_EQ(log.find(t), std::string::npos) << id << " log";
    }
  }

  void StartWorker(const std::string& id) {
    std::string token_file = dir_.Join(id + ".token");
    std::ofstream(token_file) << Token(id, "worker") << "\n";
    pid_t pid = SpawnWithOutput(
        {DYT_WORKER_BINARY, "--scheduler", address_, "--worker-id", id, "--cpu-slots", "1",
         "--work-dir", dir_.Join("work-" + id), "--trainer", DYT_TRAIN_BINARY, "--ca-file",
         certs_ + "/ca.crt", "--token-file", token_file, "--orphan-timeout-s", "60"},
        {"OMP_NUM_THREADS=1"}, dir_.Join(id + ".out"), dir_.Join(id + ".err"));
    ASSERT_GT(pid, 0);
    workers_.push_back(pid);
    ids_.push_back(id);
  }

  std::vector<pid_t> workers_;
  std::vector<std::string> ids_;
};

TEST_F(TlsClusterTest, TwoRankJobSucceedsWithWorkerTokensOverTls) {
  StartWorker("node-a");
  StartWorker("node-b");
  std::string alice = Token("alice", "user");
  v1::JobSpec spec;
  spec.set_name("tls-e2e");
  spec.mutable_model()->set_preset("test");
  spec.mutable_data()->set_synthetic(true);
  spec.mutable_train()->set_steps(4);
  spec.mutable_train()->set_batch_size(2);
  spec.mutable_train()->set_log_every(1);
  spec.mutable_resources()->set_ranks(2);
  spec.mutable_resources()->set_slots_per_rank(1);
  spec.mutable_resources()->set_kind("cpu");
  v1::Job job;
  ASSERT_TRUE(Submit(alice, spec, &job).ok());

  v1::Job now;
  auto deadline = std::chrono::steady_clock::now() + seconds(240);
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(Get(alice, job.id(), &now).ok());
    if (now.state() == v1::SUCCEEDED || now.state() == v1::FAILED || now.state() == v1::CANCELLED) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(now.state(), v1::SUCCEEDED) << now.reason() << "\n--- scheduler\n"
                                        << Log() << "\n--- node-a\n"
                                        << ReadText(dir_.Join("node-a.err")) << "\n--- node-b\n"
                                        << ReadText(dir_.Join("node-b.err"));
  // Both workers ran a rank (1 slot each), so the ranks met through the scheduler's
  // rendezvous, each with its own worker's token.
  for (const auto& id : ids_) {
    EXPECT_TRUE(std::filesystem::exists(dir_.Join("work-" + id + "/jobs/" + job.id()))) << id;
  }
  EXPECT_EQ(now.spec().owner(), "alice");
}

// --data-root holds where the files are opened: a glob pattern under the root passes the
// submit-time check, but the trainer refuses the file it matches through a symlink out of the
// root (it read a file outside the root before), and the job fails as a configuration error.
TEST_F(TlsClusterTest, ADataRootHoldsForFilesAGlobReachesThroughASymlink) {
  { std::ofstream(dir_.Join("outside/secret.bin")) << std::string(4096, 'S'); }
  StartWorker("node-a");
  std::string alice = Token("alice", "user");
  v1::JobSpec spec = Spec("escape", data_root_ + "/esc*/secret.bin");
  spec.mutable_data()->set_format("raw_u16");
  spec.mutable_resources()->set_kind("cpu");
  spec.set_max_restarts(3);
  v1::Job job;
  ASSERT_TRUE(Submit(alice, spec, &job).ok());
  v1::Job now;
  auto deadline = std::chrono::steady_clock::now() + seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(Get(alice, job.id(), &now).ok());
    if (now.state() == v1::SUCCEEDED || now.state() == v1::FAILED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(now.state(), v1::FAILED) << now.reason() << "\n" << ReadText(dir_.Join("node-a.err"));
  EXPECT_NE(now.reason().find("train_paths: " + data_root_ + "/escape/secret.bin resolves to " +
                              dir_.Join("outside/secret.bin") + ", outside the data roots (" +
                              data_root_ + ")"),
            std::string::npos)
      << now.reason();
  EXPECT_NE(now.reason().find("configuration error: not retried"), std::string::npos)
      << now.reason();
  EXPECT_EQ(now.reason().find("SSSS"), std::string::npos) << now.reason();
}

// A worker the scheduler refuses (a token of another worker; later, its own token revoked)
// says why, in its log and in dyt_worker_scheduler_refused, and stays up watching its token file
// (it exited 2, into a restart loop that no alert could tell from a crash): a valid token
// written there is taken up within seconds, without a restart.
TEST_F(TlsClusterTest, ARefusedWorkerSaysWhyAndTakesUpANewToken) {
  auto listed = [&](const std::string& id) {
    grpc::ClientContext context;
    context.set_deadline(In(10));
    v1::ListWorkersResponse list;
    if (!Jobs(admin_)->ListWorkers(&context, v1::ListWorkersRequest(), &list).ok()) return false;
    for (const auto& w : list.workers()) {
      if (w.id() == id && w.connected()) return true;
    }
    return false;
  };
  auto eventually = [](const std::function<bool()>& done, int seconds_) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(seconds_);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
  };
  const std::string token_file = dir_.Join("node-z.token");
  std::ofstream(token_file) << Token("node-a", "worker") << "\n";  // another worker's
  const int metrics_port = ::dyt::testing::FreePort();
  const pid_t pid = SpawnWithOutput(
      {DYT_WORKER_BINARY, "--scheduler", address_, "--worker-id", "node-z", "--cpu-slots", "1",
       "--work-dir", dir_.Join("work-z"), "--trainer", DYT_TRAIN_BINARY, "--ca-file",
       certs_ + "/ca.crt", "--token-file", token_file, "--refused-retry-s", "600",
       "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)},
      {}, dir_.Join("node-z.out"), dir_.Join("node-z.err"));
  ASSERT_GT(pid, 0);
  workers_.push_back(pid);
  auto metric = [&] { return ::dyt::testing::HttpGet(metrics_port, "/metrics").body; };
  EXPECT_TRUE(eventually(
      [&] { return metric().find("\ndyt_worker_scheduler_refused 1") != std::string::npos; }, 30))
      << metric() << ReadText(dir_.Join("node-z.err"));
  EXPECT_NE(metric().find("\ndyt_worker_scheduler_connected 0"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), 0) << "it stays up";
  std::string err = ReadText(dir_.Join("node-z.err"));
  EXPECT_NE(err.find("refused worker node-z (PERMISSION_DENIED"), std::string::npos) << err;
  EXPECT_NE(err.find("dytctl token create --user node-z --role worker"), std::string::npos) << err;

  std::ofstream(token_file) << Token("node-z", "worker") << "\n";
  ASSERT_TRUE(eventually([&] { return listed("node-z"); }, 30))
      << ReadText(dir_.Join("node-z.err"));
  EXPECT_TRUE(eventually(
      [&] { return metric().find("\ndyt_worker_scheduler_refused 0") != std::string::npos; }, 10))
      << metric();
  EXPECT_NE(ReadText(dir_.Join("node-z.err")).find("a new token: trying it"), std::string::npos);

  // Its token revoked while registered: refused again, and still up.
  std::string token = ReadText(token_file);
  while (!token.empty() && token.back() == '\n') token.pop_back();
  ASSERT_TRUE(Revoke(TokenId(token)).ok());
  EXPECT_TRUE(eventually(
      [&] { return metric().find("\ndyt_worker_scheduler_refused 1") != std::string::npos; }, 30))
      << metric() << ReadText(dir_.Join("node-z.err"));
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), 0) << "it stays up";
  err = ReadText(dir_.Join("node-z.err"));
  EXPECT_NE(err.find("refused worker node-z (UNAUTHENTICATED"), std::string::npos) << err;
  EXPECT_NE(err.find("revoked"), std::string::npos) << err;
  // A new token in the file is taken up within seconds (the file is read every second; the
  // retry interval is 10 minutes here), without a restart.
  const auto wrote = std::chrono::steady_clock::now();
  std::ofstream(token_file) << Token("node-z", "worker") << "\n";
  ASSERT_TRUE(eventually([&] { return listed("node-z"); }, 30))
      << ReadText(dir_.Join("node-z.err"));
  EXPECT_LT(std::chrono::steady_clock::now() - wrote, seconds(10));
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), 0) << "the same process";
}

// A worker started without --ca-file against the TLS scheduler only sees its connection
// dropped; it says what is missing (as dytctl does) while it retries.
TEST_F(TlsClusterTest, APlaintextWorkerIsToldThatTheSchedulerNeedsItsCa) {
  auto plain =
      proc::Run({DYT_WORKER_BINARY, "--scheduler", address_, "--worker-id", "node-p", "--cpu-slots",
                 "1", "--work-dir", dir_.Join("work-p"), "--trainer", DYT_TRAIN_BINARY},
                {}, seconds(4));
  EXPECT_NE(plain.err.find("could not register: UNAVAILABLE"), std::string::npos) << plain.err;
  EXPECT_NE(plain.err.find("(a scheduler serving TLS needs --ca-file)"), std::string::npos)
      << plain.err;
}

}  // namespace
}  // namespace dyt::security_testing
