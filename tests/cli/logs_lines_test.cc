// dytctl logs against an in-process scheduler fed by a test worker session: every line the
// trainer printed is printed, also identical lines that arrive in the same second (lines are
// told apart by their number in the rank's output, not by time and text), and control
// characters are escaped on a terminal (TerminalSafe).
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <thread>
#include <vector>

#include "services/cli/commands.h"
#include "services/cli/format.h"
#include "tests/scheduler/service_test_util.h"
#include "tests/scheduler/test_util.h"
#include "tests/scheduler/test_worker.h"

namespace dyt::cli {
namespace {

using ::dyt::testing::TestServer;
using ::dyt::testing::TestWorker;

// A one-rank job on an in-process scheduler whose test worker sends its output lines.
class DytctlLogsTest : public ::testing::Test {
 protected:
  DytctlLogsTest()
      : store_(::dyt::testing::OpenStore(dir_.Join("db"))),
        server_(store_.get()),
        worker_(server_.port(), "w1", 1) {}

  // Starts a job whose rank 0 printed `lines` (numbered from 1); its id.
  std::string JobThatPrinted(const std::vector<std::string>& lines) {
    v1::JobSpec spec = ::dyt::testing::ValidSpec("printer");
    spec.mutable_resources()->set_ranks(1);
    const std::string id = ::dyt::testing::SubmitJob(server_, spec);
    auto a = worker_.TakeAssignment(id);
    EXPECT_TRUE(a);
    if (!a) return id;
    worker_.StartAll(*a);
    v1::WorkerMessage m;
    v1::LogBatch* batch = m.mutable_logs();
    batch->set_job_id(id);
    batch->set_attempt(a->attempt());
    batch->set_rank(0);
    batch->set_first_line(1);
    for (const std::string& line : lines) batch->add_lines(line);
    worker_.Send(m);
    return id;
  }

  // `dytctl logs` of `args.id` once the scheduler has the lines (at most 10 s); its stdout.
  std::string Logs(const LogsArgs& args, bool tty) {
    CommandContext ctx;
    ctx.config.server = "127.0.0.1:" + std::to_string(server_.port());
    ctx.tty = tty;
    std::ostringstream out, err;
    ctx.out = &out;
    ctx.err = &err;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
      out.str("");
      EXPECT_EQ(RunLogs(ctx, args), kExitOk) << err.str();
      EXPECT_EQ(err.str(), "");
      if (!out.str().empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return out.str();
  }

  ::dyt::testing::TempDir dir_;
  std::unique_ptr<StateStore> store_;
  TestServer server_;
  TestWorker worker_;
};

TEST_F(DytctlLogsTest, IdenticalLinesOfOneSecondAreAllPrinted) {
  LogsArgs args;
  args.id = JobThatPrinted({"warning: slow step", "warning: slow step", "", "", "step 1/5"});
  const std::string want = "warning: slow step\nwarning: slow step\n\n\nstep 1/5\n";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string got;
  while ((got = Logs(args, /*tty=*/false)) != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(got, want);
}

TEST(TerminalSafeTest, EscapesControlsAndKeepsOtherUtf8) {
  EXPECT_EQ(TerminalSafe("a\tb"), "a\tb");
  EXPECT_EQ(TerminalSafe("\x1b[2J\r\x7f"), "\\x1b[2J\\x0d\\x7f");
  EXPECT_EQ(TerminalSafe("\xc2\x9b"
                         "1m"),
            "\\u009b1m");  // C1 as UTF-8
  EXPECT_EQ(TerminalSafe("x\x9b"
                         "1m"),
            "x\\x9b1m");                                             // C1 as a stray byte
  EXPECT_EQ(TerminalSafe("\xe2\x80\x9b \xc3\xa9 \xf0\x9f\x99\x82"),  // U+201B, é, U+1F642
            "\xe2\x80\x9b \xc3\xa9 \xf0\x9f\x99\x82");
  EXPECT_EQ(TerminalSafe("cut \xe2\x80"), "cut \xe2\\x80");  // a sequence cut short
  EXPECT_EQ(TerminalSafe("one\ntwo"), "one\\x0atwo");
  EXPECT_EQ(TerminalSafe("one\ntwo\x1b", /*keep_newlines=*/true), "one\ntwo\\x1b");
}

// A job's output cannot drive the terminal of whoever reads its logs: on a terminal control
// characters are shown escaped; --raw, a pipe or a file get the bytes as the trainer wrote them.
TEST_F(DytctlLogsTest, ControlCharactersAreShownEscapedOnATerminal) {
  const std::string line =
      "step\t1 \x1b[2J\x1b]0;owned\x07 done\r\x7f \xc2\x9b"
      "31m \xc3\xa9";
  LogsArgs args;
  args.id = JobThatPrinted({line});
  EXPECT_EQ(Logs(args, /*tty=*/true),
            "step\t1 \\x1b[2J\\x1b]0;owned\\x07 done\\x0d\\x7f \\u009b31m \xc3\xa9\n");
  args.raw = true;
  EXPECT_EQ(Logs(args, /*tty=*/true), line + "\n");
  args.raw = false;
  EXPECT_EQ(Logs(args, /*tty=*/false), line + "\n");
}

// watch prints every event since it began, also those between two updates: a failed
// attempt's RESTARTING (which says why) is followed by QUEUED in the same scheduler pass.
TEST_F(DytctlLogsTest, WatchPrintsEveryEventIncludingWhyAnAttemptFailed) {
  v1::JobSpec spec = ::dyt::testing::ValidSpec("crashy");
  spec.mutable_resources()->set_ranks(1);
  spec.set_max_restarts(1);
  const std::string id = ::dyt::testing::SubmitJob(server_, spec);
  CommandContext ctx;
  ctx.config.server = "127.0.0.1:" + std::to_string(server_.port());
  std::ostringstream out, err;
  ctx.out = &out;
  ctx.err = &err;
  int code = -1;
  std::thread watch([&] { code = RunWatch(ctx, id); });
  // Its first update (the QUEUED job) before the attempts below: the history before a watch
  // begins is not replayed. (Its output is read only after join: no shared stream.)
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto a = worker_.TakeAssignment(id);
    ASSERT_TRUE(a);
    worker_.StartAll(*a);
    worker_.Exited(id, attempt, 0, v1::RankUpdate::FAILED, "exited with code 1",
                   "Traceback\nValueError: boom " + std::to_string(attempt));
  }
  watch.join();
  EXPECT_EQ(code, kExitJobNotSucceeded);
  const std::string text = out.str();
  EXPECT_NE(
      text.find(" RESTARTING: rank 0 on w1: exited with code 1 (restart 1 of 1) [+3 lines]\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(" QUEUED: requeued; starts over (no checkpoint yet)\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find(" FAILED: rank 0 on w1: exited with code 1; max_restarts 1 reached [+"),
            std::string::npos)
      << text;
  // The whole reason at the end, its stderr tail included.
  EXPECT_NE(text.find("\nreason: rank 0 on w1: exited with code 1; max_restarts 1 reached\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ValueError: boom 2"), std::string::npos) << text;
}

}  // namespace
}  // namespace dyt::cli
