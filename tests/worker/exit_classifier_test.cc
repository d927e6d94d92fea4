#include "services/worker/exit_classifier.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace dyt::worker {
namespace {

dist::ChildOutcome Exited(int code, bool signalled = false) {
  dist::ChildOutcome c;
  c.exited = true;
  c.exit_code = code;
  c.signalled_by_launcher = signalled;
  return c;
}

dist::ChildOutcome Killed(int sig, bool signalled = false) {
  dist::ChildOutcome c;
  c.term_signal = sig;
  c.signalled_by_launcher = signalled;
  return c;
}

TEST(ExitClassifierTest, ZeroSucceedsEvenAfterAStop) {
  auto u = ClassifyExit(Exited(0), {});
  EXPECT_EQ(u.kind(), v1::RankUpdate::EXITED);
  EXPECT_EQ(u.exit(), v1::RankUpdate::SUCCEEDED);
  EXPECT_EQ(u.exit_code(), 0);
  ExitContext stopped;
  stopped.stop = StopCause::kCancel;
  EXPECT_EQ(ClassifyExit(Exited(0), stopped).exit(), v1::RankUpdate::SUCCEEDED);
}

TEST(ExitClassifierTest, AStopWeAskedForIsStopped) {
  ExitContext c;
  c.stop = StopCause::kPreempt;
  auto u = ClassifyExit(Exited(3, true), c);
  EXPECT_EQ(u.exit(), v1::RankUpdate::STOPPED);
  EXPECT_EQ(u.exit_code(), 3);
  EXPECT_NE(u.reason().find("preempt"), std::string::npos) << u.reason();
  EXPECT_NE(u.reason().find("after a checkpoint"), std::string::npos) << u.reason();
  c.stop = StopCause::kCancel;
  auto k = ClassifyExit(Killed(SIGKILL, true), c);
  EXPECT_EQ(k.exit(), v1::RankUpdate::STOPPED);
  EXPECT_EQ(k.signal(), SIGKILL);
  EXPECT_NE(k.reason().find("killed by signal 9"), std::string::npos) << k.reason();
  EXPECT_FALSE(k.stopped_by_worker()) << "the scheduler asked";
  // Stops of the worker's own (the cluster's doing, not the job's): flagged so that the
  // scheduler spends no restart on them.
  for (StopCause cause : {StopCause::kOrphaned, StopCause::kShutdown}) {
    c.stop = cause;
    auto w = ClassifyExit(Exited(3, true), c);
    EXPECT_EQ(w.exit(), v1::RankUpdate::STOPPED);
    EXPECT_TRUE(w.stopped_by_worker()) << w.reason();
  }
  EXPECT_EQ(ClassifyExit(Exited(3, true), c).reason(),
            "stopped (worker shutdown): exited with code 3 after a checkpoint");
}

TEST(ExitClassifierTest, OtherEndsFailWithTheLastError) {
  ExitContext c;
  c.last_error = "invalid config: train.steps: must be >= 1";
  auto u = ClassifyExit(Exited(2), c);
  EXPECT_EQ(u.exit(), v1::RankUpdate::FAILED);
  EXPECT_EQ(u.reason(), "exited with code 2: invalid config: train.steps: must be >= 1");
  // Exit 3 nobody asked for (a SIGTERM from outside) is a failure too.
  EXPECT_EQ(ClassifyExit(Exited(3), {}).exit(), v1::RankUpdate::FAILED);
  auto k = ClassifyExit(Killed(SIGSEGV), {});
  EXPECT_EQ(k.exit(), v1::RankUpdate::FAILED);
  EXPECT_EQ(k.signal(), SIGSEGV);
  EXPECT_EQ(k.reason().rfind("killed by signal 11", 0), 0u) << k.reason();
}

TEST(ExitClassifierTest, APeerStoppedByTheLauncherIsStopped) {
  ExitContext c;
  c.failed_peer_rank = 1;
  auto u = ClassifyExit(Exited(3, true), c);
  EXPECT_EQ(u.exit(), v1::RankUpdate::STOPPED);
  EXPECT_NE(u.reason().find("rank 1 failed"), std::string::npos);
  // The failing rank itself (not signalled) still fails.
  EXPECT_EQ(ClassifyExit(Exited(1, false), c).exit(), v1::RankUpdate::FAILED);
}

TEST(ExitClassifierTest, LastErrorLinePrefersErrorLevelLines) {
  EXPECT_EQ(LastErrorLine({"2024-01-01T00:00:00.000 I dyt-train step 1",
                           "2024-01-01T00:00:00.001 E dyt-train invalid config: x",
                           "2024-01-01T00:00:00.002 I dyt-train bye"}),
            "2024-01-01T00:00:00.001 E dyt-train invalid config: x");
  EXPECT_EQ(LastErrorLine({"a", "Segmentation fault: ERROR", "b"}), "Segmentation fault: ERROR");
  EXPECT_EQ(LastErrorLine({"a", "b", ""}), "b");
  EXPECT_EQ(LastErrorLine({}), "");
}

}  // namespace
}  // namespace dyt::worker
