// dyt-launch, end to end (the binary), and the Launcher library's pure parts.
#include "trainer/dist/launcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "tests/dist/subprocess.h"

namespace dyt::dist {
namespace {

using std::chrono::milliseconds;
using testing::ExitInfo;
using testing::ReadFile;
using testing::Spawn;
using testing::TempDir;
using testing::WaitFor;

struct LaunchRun {
  ExitInfo exit;
  std::string stderr_text;
};

// Runs dyt-launch with `args` (its options, "--", the program) and OUT=dir in the environment.
LaunchRun Launch(const TempDir& dir, const std::vector<std::string>& args,
                 milliseconds timeout = milliseconds(10000)) {
  std::vector<std::string> argv = {DYT_LAUNCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string err = dir.path() + "/launch.stderr";
  const pid_t pid = Spawn(argv, {"OUT=" + dir.path()}, err);
  LaunchRun run;
  run.exit = WaitFor(pid, timeout);
  run.stderr_text = ReadFile(err).value_or("");
  return run;
}

TEST(DytLaunchTest, AllRanksExitingZeroExitsZero) {
  TempDir dir;
  const LaunchRun run = Launch(dir, {"--nproc", "2", "--", "/bin/sh", "-c", "exit 0"});
  ASSERT_TRUE(run.exit.finished);
  EXPECT_TRUE(run.exit.exited && run.exit.code == 0) << run.stderr_text;
}

TEST(DytLaunchTest, AFailingRankStopsTheOthersAndIsNamed) {
  TempDir dir;
  // Local rank 1 fails after a moment; rank 0 would sleep for a minute, in a child process of
  // its shell whose pid it records, so we can check the whole process group went.
  const std::string script =
      "if [ \"$DYT_LOCAL_RANK\" = 1 ]; then sleep 0.3; exit 7; fi; "
      "sleep 60 & echo $! > \"$OUT/sleep_pid\"; wait";
  const LaunchRun run =
      Launch(dir, {"--nproc", "2", "--grace-s", "3", "--", "/bin/sh", "-c", script});
  ASSERT_TRUE(run.exit.finished) << "dyt-launch hung";
  EXPECT_TRUE(run.exit.exited);
  EXPECT_EQ(run.exit.code, 7) << run.stderr_text;
  EXPECT_LT(run.exit.seconds, 4.0) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("rank 1 (local 1"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("exited with code 7"), std::string::npos) << run.stderr_text;
  // The sleeping grandchild is gone too (killed with its process group).
  const auto pid_text = ReadFile(dir.path() + "/sleep_pid");
  ASSERT_TRUE(pid_text.has_value());
  const pid_t sleeper = std::stoi(*pid_text);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    const auto stat = ReadFile("/proc/" + std::to_string(sleeper) + "/stat");
    // Gone, or a zombie waiting for init to reap it.
    gone = !stat.has_value() || stat->find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(gone) << "sleep " << sleeper << " survived";
}

TEST(DytLaunchTest, RanksIgnoringSigtermAreKilledAfterTheGracePeriod) {
  TempDir dir;
  const std::string script =
      "if [ \"$DYT_LOCAL_RANK\" = 0 ]; then sleep 0.2; exit 5; fi; trap '' TERM; sleep 60";
  const LaunchRun run =
      Launch(dir, {"--nproc", "3", "--grace-s", "1", "--", "/bin/sh", "-c", script});
  ASSERT_TRUE(run.exit.finished) << "dyt-launch hung";
  EXPECT_EQ(run.exit.code, 5) << run.stderr_text;
  EXPECT_GE(run.exit.seconds, 1.0);
  EXPECT_LT(run.exit.seconds, 4.0);
  EXPECT_NE(run.stderr_text.find("rank 0 (local 0"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("SIGKILL"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("killed by signal 9"), std::string::npos) << run.stderr_text;
}

TEST(DytLaunchTest, ARankKilledBySignalIsReported) {
  TempDir dir;
  const std::string script = "if [ \"$DYT_LOCAL_RANK\" = 1 ]; then kill -KILL $$; fi; sleep 60";
  const LaunchRun run = Launch(dir, {"--nproc", "2", "--", "/bin/sh", "-c", script});
  ASSERT_TRUE(run.exit.finished);
  EXPECT_EQ(run.exit.code, 128 + 9) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("rank 1 (local 1"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("killed by signal 9"), std::string::npos) << run.stderr_text;
}

TEST(DytLaunchTest, AllRanksPreemptedExitThree) {
  TempDir dir;
  const LaunchRun run = Launch(dir, {"--nproc", "2", "--", "/bin/sh", "-c", "exit 3"});
  ASSERT_TRUE(run.exit.finished);
  EXPECT_EQ(run.exit.code, kExitPreempted) << run.stderr_text;
}

TEST(DytLaunchTest, SigtermIsForwardedToEveryRank) {
  TempDir dir;
  // Each rank says it is up, then exits 3 on SIGTERM ("checkpointed, resumable").
  const std::string script =
      "trap 'exit 3' TERM; touch \"$OUT/up.$DYT_LOCAL_RANK\"; "
      "while true; do sleep 0.05; done";
  const std::string err = dir.path() + "/launch.stderr";
  const pid_t pid = Spawn({DYT_LAUNCH_BINARY, "--nproc", "2", "--", "/bin/sh", "-c", script},
                          {"OUT=" + dir.path()}, err);
  ASSERT_TRUE(testing::WaitForFile(dir.path() + "/up.0", milliseconds(5000)));
  ASSERT_TRUE(testing::WaitForFile(dir.path() + "/up.1", milliseconds(5000)));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  const ExitInfo e = WaitFor(pid, milliseconds(5000));
  ASSERT_TRUE(e.finished);
  EXPECT_EQ(e.code, kExitPreempted) << ReadFile(err).value_or("");
  EXPECT_NE(ReadFile(err).value_or("").find("forwarding"), std::string::npos);
}

TEST(DytLaunchTest, SetsTheDistributedEnvironment) {
  TempDir dir;
  const std::string rdzv = dir.path() + "/rdzv";
  const LaunchRun run =
      Launch(dir, {"--nproc", "2", "--nnodes", "3", "--node-rank", "1", "--rdzv", rdzv, "--rdzv-id",
                   "job9.attempt2", "--timeout-s", "2.5", "--host", "lo", "--", "/bin/sh", "-c",
                   // Only the variables dyt-launch sets: the test's own environment may hold
                   // other DYT_ settings (e.g. a build directory).
                   "env | grep -E '^DYT_(DIST_|LOCAL_|NODE_|RANK|RDZV|WORLD_)' | sort > "
                   "\"$OUT/env.$DYT_LOCAL_RANK\""});
  ASSERT_TRUE(run.exit.finished);
  ASSERT_EQ(run.exit.code, 0) << run.stderr_text;
  for (int local = 0; local < 2; ++local) {
    const auto env = ReadFile(dir.path() + "/env." + std::to_string(local));
    ASSERT_TRUE(env.has_value());
    const std::vector<std::string> want = {
        "DYT_DIST_HOST=lo",
        "DYT_DIST_TIMEOUT_S=2.5",
        "DYT_LOCAL_RANK=" + std::to_string(local),
        "DYT_LOCAL_WORLD_SIZE=2",
        "DYT_NODE_RANK=1",
        "DYT_RANK=" + std::to_string(2 + local),
        "DYT_RDZV=" + rdzv,
        "DYT_RDZV_ID=job9.attempt2",
        "DYT_WORLD_SIZE=6",
    };
    EXPECT_EQ(testing::Lines(*env), want) << *env;
  }
}

TEST(DytLaunchTest, RejectsBadArguments) {
  TempDir dir;
  EXPECT_EQ(Launch(dir, {"--nproc", "2"}).exit.code, 2);     // no program
  EXPECT_EQ(Launch(dir, {"--", "/bin/true"}).exit.code, 2);  // no --nproc
  EXPECT_EQ(Launch(dir, {"--nproc", "0", "--", "/bin/true"}).exit.code, 2);
  EXPECT_EQ(Launch(dir, {"--nproc", "2", "--nnodes", "2", "--", "/bin/true"}).exit.code, 2);
  EXPECT_EQ(Launch(dir, {"--nproc", "1", "--nnodes", "2", "--node-rank", "2", "--rdzv", "/tmp",
                         "--rdzv-id", "x", "--", "/bin/true"})
                .exit.code,
            2);
  EXPECT_EQ(Launch(dir, {"--nproc", "2", "--rdzv-id", "bad id", "--", "/bin/true"}).exit.code, 2);
  const LaunchRun missing = Launch(dir, {"--nproc", "2", "--", "no-such-program-dyt-test", "arg"});
  EXPECT_EQ(missing.exit.code, 1);
  EXPECT_NE(missing.stderr_text.find("not found in PATH"), std::string::npos)
      << missing.stderr_text;
}

// The real thing: dyt-launch starts Gloo ranks that find each other through the environment.
TEST(DytLaunchTest, LaunchesGlooRanksThatRunEveryCollective) {
  TempDir dir;
  const LaunchRun run = Launch(
      dir,
      {"--nproc", "2", "--timeout-s", "10", "--", DYT_DIST_TEST_WORKER, "collectives", dir.path()},
      milliseconds(14000));
  ASSERT_TRUE(run.exit.finished);
  EXPECT_EQ(run.exit.code, 0) << run.stderr_text;
  const auto a = ReadFile(dir.path() + "/rank0.bin");
  const auto b = ReadFile(dir.path() + "/rank1.bin");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(*a == *b);
}

TEST(LauncherTest, ChildEnvironmentOverridesAndInherits) {
  LaunchSpec spec;
  spec.command = {"/bin/true"};
  spec.nproc = 4;
  spec.nnodes = 2;
  spec.node_rank = 1;
  spec.rdzv_dir = "/shared/rdzv";
  spec.rdzv_id = "j1";
  spec.omp_threads_if_unset = 3;
  spec.extra_env = {{"EXTRA", "1"}, {"DYT_RDZV_ID", "override"}};
  const std::vector<std::string> base = {"PATH=/bin", "DYT_RANK=99", "HOME=/root"};
  std::vector<std::string> env = ChildEnvironment(spec, 2, base);
  std::sort(env.begin(), env.end());
  const std::vector<std::string> want = {"DYT_LOCAL_RANK=2",
                                         "DYT_LOCAL_WORLD_SIZE=4",
                                         "DYT_NODE_RANK=1",
                                         "DYT_RANK=6",
                                         "DYT_RDZV=/shared/rdzv",
                                         "DYT_RDZV_ID=override",
                                         "DYT_WORLD_SIZE=8",
                                         "EXTRA=1",
                                         "HOME=/root",
                                         "OMP_NUM_THREADS=3",
                                         "PATH=/bin"};
  EXPECT_EQ(env, want);
  // An OMP_NUM_THREADS the user set is kept.
  const std::vector<std::string> with_omp = ChildEnvironment(spec, 0, {"OMP_NUM_THREADS=16"});
  EXPECT_NE(std::find(with_omp.begin(), with_omp.end(), "OMP_NUM_THREADS=16"), with_omp.end());
  EXPECT_EQ(std::find(with_omp.begin(), with_omp.end(), "OMP_NUM_THREADS=3"), with_omp.end());
}

// One process needs no rendezvous: DYT_RDZV and DYT_RDZV_ID are left unset (a trainer refuses
// them empty), also when the launcher's own environment has stale ones.
TEST(LauncherTest, OneProcessGetsNoRendezvousVariables) {
  LaunchSpec spec;
  spec.command = {"/bin/true"};
  const std::vector<std::string> env =
      ChildEnvironment(spec, 0, {"PATH=/bin", "DYT_RDZV=/old", "DYT_RDZV_ID=old"});
  for (const std::string& e : env) {
    EXPECT_NE(e.rfind("DYT_RDZV", 0), 0u) << e;
  }
  EXPECT_NE(std::find(env.begin(), env.end(), "DYT_WORLD_SIZE=1"), env.end());
}

TEST(LauncherTest, ValidateLaunchSpecNamesTheField) {
  LaunchSpec spec;
  spec.command = {"/bin/true"};
  EXPECT_TRUE(ValidateLaunchSpec(spec).ok());
  spec.nproc = 2;
  EXPECT_NE(ValidateLaunchSpec(spec).message().find("rdzv"), std::string::npos);
  spec.rdzv_dir = "/tmp";
  spec.rdzv_id = "id";
  EXPECT_TRUE(ValidateLaunchSpec(spec).ok());
  spec.node_rank = 1;
  EXPECT_NE(ValidateLaunchSpec(spec).message().find("node_rank"), std::string::npos);
  spec.node_rank = 0;
  spec.command.clear();
  EXPECT_NE(ValidateLaunchSpec(spec).message().find("command"), std::string::npos);
}

TEST(LauncherTest, LibraryWaitReportsEveryChild) {
  LaunchSpec spec;
  spec.command = {"/bin/sh", "-c", "exit $((DYT_LOCAL_RANK == 2 ? 9 : 0))"};
  spec.nproc = 3;
  spec.rdzv_dir = "/unused";
  spec.rdzv_id = "unused";
  std::vector<std::string> log;
  spec.log = [&log](const std::string& line) { log.push_back(line); };
  auto launcher = Launcher::Start(spec);
  ASSERT_TRUE(launcher.ok()) << launcher.status().ToString();
  const LaunchResult result = (*launcher)->Wait(nullptr);
  EXPECT_EQ(result.exit_code, 9);
  EXPECT_EQ(result.first_failed_rank, 2);
  ASSERT_EQ(result.children.size(), 3u);
  EXPECT_EQ(result.children[2].exit_code, 9);
  EXPECT_NE(result.summary.find("rank 2"), std::string::npos) << result.summary;
}

}  // namespace
}  // namespace dyt::dist
