// The Supervisor with real dyt-train processes (no scheduler: the reports are read from the
// Outbox): a rank trains to completion, CANCEL and PREEMPT stops, a trainer that ignores
// SIGTERM is killed with its whole process group, a failing trainer's output tail, and bad
// assignments reported as failures. Each rank's output is also kept in its rank-<r>.log.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "services/worker/supervisor.h"
#include "tests/common/temp_dir.h"

namespace dyt::worker {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using Messages = std::vector<v1::WorkerMessage>;

// Everything the supervisor reported so far, taken from its Outbox.
class Reports {
 public:
  explicit Reports(Outbox* box) : box_(box) {}
  bool WaitFor(const std::function<bool(const Messages&)>& done, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      for (auto& m : box_->Take(/*flush=*/true)) all_.push_back(std::move(m));
      if (done(all_)) return true;
      if (Clock::now() >= deadline) return false;
      box_->Wait(milliseconds(50));
    }
  }
  std::vector<v1::RankUpdate> Updates(v1::RankUpdate::Kind kind) const {
    std::vector<v1::RankUpdate> out;
    for (const auto& m : all_) {
      if (m.has_update() && m.update().kind() == kind) out.push_back(m.update());
    }
    return out;
  }
  std::vector<v1::CheckpointRecord> Checkpoints() const {
    std::vector<v1::CheckpointRecord> out;
    for (const auto& m : all_) {
      if (m.has_checkpoint()) out.push_back(m.checkpoint().checkpoint());
    }
    return out;
  }
  std::vector<std::string> LogLines() const {
    std::vector<std::string> out;
    for (const auto& m : all_) {
      if (m.has_logs()) out.insert(out.end(), m.logs().lines().begin(), m.logs().lines().end());
    }
    return out;
  }
  const Messages& all() const { return all_; }

 private:
  Outbox* box_;
  Messages all_;
};

int Count(const Messages& all, v1::RankUpdate::Kind kind) {
  int n = 0;
  for (const auto& m : all) n += m.has_update() && m.update().kind() == kind;
  return n;
}

class SupervisorProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.trainer = DYT_TRAIN_BINARY;
    options_.work_dir = dir_.Join("work");
    options_.slots = 2;
    options_.stop_grace = seconds(20);
    options_.trainer_log_level = "info";
  }
  std::unique_ptr<Supervisor> Make() {
    return std::make_unique<Supervisor>(options_, &box_, nullptr);
  }
  v1::Assignment Job(const std::string& id, int64_t steps, int every_steps = 0) {
    v1::Assignment a;
    a.set_job_id(id);
    a.set_attempt(1);
    a.set_world_size(1);
    a.set_checkpoint_dir(dir_.Join("artifacts/" + id));
    a.set_rendezvous_id(id + ".1");
    v1::JobSpec* s = a.mutable_spec();
    s->mutable_model()->set_preset("test");
    s->mutable_data()->set_synthetic(true);
    s->mutable_train()->set_steps(steps);
    s->mutable_train()->set_batch_size(2);
    s->mutable_train()->set_log_every(1);
    s->mutable_resources()->set_kind("cpu");
    s->mutable_resources()->set_ranks(1);
    s->mutable_resources()->set_slots_per_rank(1);
    s->mutable_checkpoint()->set_every_steps(every_steps);
    v1::RankPlacement* r = a.add_ranks();
    r->set_rank(0);
    r->add_slots(0);
    return a;
  }
  static bool GroupGone(int pgid) { return ::kill(-pgid, 0) != 0 && errno == ESRCH; }

  testing::TempDir dir_;
  SupervisorOptions options_;
  Outbox box_;
};

TEST_F(SupervisorProcessTest, ARankTrainsToCompletionAndItsEventsAreReported) {
  auto sup = Make();
  sup->Assign(Job("job-ok", 5));
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 1; },
                        seconds(60)));
  ASSERT_EQ(r.Updates(v1::RankUpdate::STARTED).size(), 1u);
  const auto exited = r.Updates(v1::RankUpdate::EXITED)[0];
  EXPECT_EQ(exited.exit(), v1::RankUpdate::SUCCEEDED) << exited.reason() << exited.stderr_tail();
  EXPECT_EQ(exited.exit_code(), 0);
  EXPECT_EQ(exited.job_id(), "job-ok");
  EXPECT_EQ(exited.attempt(), 1);
  const auto progress = r.Updates(v1::RankUpdate::PROGRESS);
  ASSERT_GE(progress.size(), 5u);
  EXPECT_EQ(progress.back().progress().step(), 5);
  EXPECT_EQ(progress.back().progress().steps(), 5);
  EXPECT_GT(progress.back().progress().loss(), 0);
  EXPECT_GT(progress.back().progress().tokens_per_s(), 0);
  EXPECT_GT(progress.back().progress().lr(), 0);
  // The end-of-training checkpoint, in the artifact dir, with its files.
  const auto ckpts = r.Checkpoints();
  ASSERT_EQ(ckpts.size(), 1u);
  EXPECT_EQ(ckpts[0].step(), 5);
  EXPECT_EQ(ckpts[0].job_id(), "job-ok");
  EXPECT_EQ(ckpts[0].attempt(), 1);
  EXPECT_EQ(ckpts[0].path().rfind(dir_.Join("artifacts/job-ok"), 0), 0u) << ckpts[0].path();
  EXPECT_GT(ckpts[0].files_size(), 0);
  EXPECT_GT(ckpts[0].total_bytes(), 0);
  EXPECT_TRUE(std::filesystem::is_directory(ckpts[0].path()));
  EXPECT_FALSE(r.LogLines().empty());
  // The config it ran with is kept under the work dir, and all its output: the lines sent to
  // the scheduler, in the same order.
  EXPECT_TRUE(std::filesystem::exists(options_.work_dir + "/jobs/job-ok/attempt-1/config.yaml"));
  std::ifstream log(options_.work_dir + "/jobs/job-ok/attempt-1/rank-0.log");
  std::vector<std::string> kept;
  for (std::string line; std::getline(log, line);) kept.push_back(line);
  EXPECT_EQ(kept, r.LogLines());
  EXPECT_TRUE(sup->WaitIdle(seconds(5)));
  EXPECT_TRUE(sup->Running().empty());
}

TEST_F(SupervisorProcessTest, CancelStopsTheWholeProcessGroupWithinTheGrace) {
  auto sup = Make();
  sup->Assign(Job("job-cancel", 1000000));
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::PROGRESS) >= 1; },
                        seconds(60)));
  const auto pids = sup->Pids("job-cancel", 1);
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(sup->Running().size(), 1u);
  v1::StopJob stop;
  stop.set_job_id("job-cancel");
  stop.set_attempt(1);
  stop.set_reason(v1::StopJob::CANCEL);
  stop.set_grace_ms(3000);
  const auto start = Clock::now();
  sup->Stop(stop);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 1; },
                        seconds(20)));
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(took, 3.0 + 2.5);  // the grace, plus draining the output and a loaded machine
  const auto exited = r.Updates(v1::RankUpdate::EXITED)[0];
  EXPECT_EQ(exited.exit(), v1::RankUpdate::STOPPED) << exited.reason();
  EXPECT_NE(exited.reason().find("cancel"), std::string::npos) << exited.reason();
  EXPECT_TRUE(GroupGone(pids[0]));
}

// Retention takes old finished attempts' directories but never one of an attempt still running,
// however long ago it was written to (here: a retention period of zero).
TEST_F(SupervisorProcessTest, RetentionNeverTakesTheDirectoryOfARunningAttempt) {
  auto sup = Make();
  sup->Assign(Job("job-long", 1000000));
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::PROGRESS) >= 1; },
                        seconds(60)));
  const std::string running = options_.work_dir + "/jobs/job-long/attempt-1";
  const std::string finished = options_.work_dir + "/jobs/job-old/attempt-3";
  std::filesystem::create_directories(finished);
  std::ofstream(finished + "/rank-0.log") << "old output\n";
  EXPECT_EQ(sup->PruneWorkDir(seconds(0)), 2u);  // job-old/attempt-3 and job-old
  EXPECT_FALSE(std::filesystem::exists(options_.work_dir + "/jobs/job-old"));
  EXPECT_TRUE(std::filesystem::exists(running + "/config.yaml"));
  EXPECT_TRUE(std::filesystem::exists(running + "/rank-0.log"));
  v1::StopJob stop;
  stop.set_job_id("job-long");
  stop.set_attempt(1);
  stop.set_reason(v1::StopJob::CANCEL);
  stop.set_grace_ms(3000);
  sup->Stop(stop);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 1; },
                        seconds(20)));
  ASSERT_TRUE(sup->WaitIdle(seconds(5)));
  // Ended and reaped: now it goes too.
  EXPECT_EQ(sup->PruneWorkDir(seconds(0)), 2u);
  EXPECT_FALSE(std::filesystem::exists(running));
}

TEST_F(SupervisorProcessTest, PreemptMakesTheTrainerCheckpointAndExit3) {
  auto sup = Make();
  sup->Assign(Job("job-preempt", 1000000));
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::PROGRESS) >= 2; },
                        seconds(60)));
  v1::StopJob stop;
  stop.set_job_id("job-preempt");
  stop.set_attempt(1);
  stop.set_reason(v1::StopJob::PREEMPT);
  stop.set_grace_ms(30000);
  sup->Stop(stop);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 1; },
                        seconds(40)));
  const auto exited = r.Updates(v1::RankUpdate::EXITED)[0];
  EXPECT_EQ(exited.exit(), v1::RankUpdate::STOPPED) << exited.reason();
  EXPECT_EQ(exited.exit_code(), 3) << exited.reason();
  const auto ckpts = r.Checkpoints();
  ASSERT_EQ(ckpts.size(), 1u);
  EXPECT_GE(ckpts[0].step(), 2);
  EXPECT_TRUE(std::filesystem::is_directory(ckpts[0].path()));
}

TEST_F(SupervisorProcessTest, ATrainerIgnoringSigtermIsKilledWithItsChildrenAfterTheGrace) {
  // A "trainer" that ignores SIGTERM and leaves a child in its process group.
  const std::string script = dir_.Join("stubborn.sh");
  {
    std::ofstream out(script);
    out << "#!/bin/sh\ntrap '' TERM\necho started\nsleep 600 &\nwait\n";
  }
  ::chmod(script.c_str(), 0755);
  options_.trainer = script;
  auto sup = Make();
  sup->Assign(Job("job-stubborn", 10));
  Reports r(&box_);
  // Its "started" line comes after the trap is set.
  ASSERT_TRUE(r.WaitFor(
      [](const Messages& m) {
        for (const auto& x : m) {
          if (x.has_logs() && !x.logs().lines().empty() && x.logs().lines(0) == "started") {
            return true;
          }
        }
        return false;
      },
      seconds(20)));
  const auto pids = sup->Pids("job-stubborn", 1);
  ASSERT_EQ(pids.size(), 1u);
  v1::StopJob stop;
  stop.set_job_id("job-stubborn");
  stop.set_attempt(1);
  stop.set_reason(v1::StopJob::STALE);
  stop.set_grace_ms(1000);
  const auto start = Clock::now();
  sup->Stop(stop);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 1; },
                        seconds(20)));
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 1.0 + 3.0);
  const auto exited = r.Updates(v1::RankUpdate::EXITED)[0];
  EXPECT_EQ(exited.exit(), v1::RankUpdate::STOPPED);
  EXPECT_EQ(exited.signal(), SIGKILL) << exited.reason();
  // The sleep child went with the group (reaped by init at once or soon).
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = GroupGone(pids[0]);
    if (!gone) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(gone);
}

TEST_F(SupervisorProcessTest, AFailingTrainerIsReportedWithItsOutputTail) {
  auto sup = Make();
  v1::Assignment a = Job("job-fail", 5);
  a.mutable_spec()->mutable_data()->set_synthetic(false);
  a.mutable_spec()->mutable_data()->add_train_paths(dir_.Join("no-such-shard.bin"));
  sup->Assign(a);
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 1; },
                        seconds(60)));
  const auto exited = r.Updates(v1::RankUpdate::EXITED)[0];
  EXPECT_EQ(exited.exit(), v1::RankUpdate::FAILED);
  EXPECT_NE(exited.exit_code(), 0);
  EXPECT_EQ(exited.reason().rfind("exited with code ", 0), 0u) << exited.reason();
  EXPECT_NE(exited.reason().find("no-such-shard"), std::string::npos) << exited.reason();
  EXPECT_NE(exited.stderr_tail().find("no-such-shard"), std::string::npos) << exited.stderr_tail();
}

// The watchdog (JobSpec.stall_timeout_s): a trainer that says nothing for that long (here
// stopped with SIGSTOP, as a hung host or a deadlock would leave it) is stopped and reported
// FAILED as hung, so the job restarts instead of holding its slots forever.
TEST_F(SupervisorProcessTest, ATrainerSilentPastTheStallTimeoutIsStoppedAsHung) {
  options_.stop_grace = seconds(1);
  auto sup = Make();
  v1::Assignment a = Job("job-hung", 1000000);
  a.mutable_spec()->set_stall_timeout_s(2);
  sup->Assign(a);
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::PROGRESS) >= 1; },
                        seconds(60)));
  const auto pids = sup->Pids("job-hung", 1);
  ASSERT_EQ(pids.size(), 1u);
  // Reports keep it alive: a few seconds of steps are no stall.
  for (int i = 0; i < 30; ++i) {
    sup->Reap();
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(Count(r.all(), v1::RankUpdate::EXITED), 0);
  ASSERT_EQ(::kill(pids[0], SIGSTOP), 0);
  const auto stopped = Clock::now();
  ASSERT_TRUE(r.WaitFor(
      [&](const Messages& m) {
        sup->Reap();
        return Count(m, v1::RankUpdate::EXITED) == 1;
      },
      seconds(30)));
  EXPECT_GE(Clock::now() - stopped, seconds(2));
  const auto exited = r.Updates(v1::RankUpdate::EXITED)[0];
  EXPECT_EQ(exited.exit(), v1::RankUpdate::FAILED) << exited.reason();
  // The stop continues a stopped trainer (SIGCONT with the SIGTERM), so this one saved a
  // checkpoint on its way out; a deadlocked one would be killed after the grace.
  EXPECT_EQ(exited.reason().rfind("hung: no output or event for 2 s (stall_timeout_s), stopped: "
                                  "exited with code 3 after a checkpoint",
                                  0),
            0u)
      << exited.reason();
  EXPECT_TRUE(GroupGone(pids[0]));
}

// After a shutdown began, an assignment that crossed it on the wire is not started: its ranks
// are reported stopped (the scheduler takes that for the preemption the shutdown asked for).
TEST_F(SupervisorProcessTest, AnAssignmentAfterShutdownBeganIsNotStarted) {
  auto sup = Make();
  sup->StopAll(StopCause::kShutdown, seconds(1));
  sup->Assign(Job("job-late", 5));
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 1; },
                        seconds(5)));
  const auto exited = r.Updates(v1::RankUpdate::EXITED);
  EXPECT_EQ(exited[0].exit(), v1::RankUpdate::STOPPED);
  EXPECT_EQ(exited[0].reason(), "not started: the worker is shutting down");
  EXPECT_EQ(r.Updates(v1::RankUpdate::STARTED).size(), 0u);
  EXPECT_EQ(sup->running_attempts(), 0);
}

TEST_F(SupervisorProcessTest, BadAssignmentsAreReportedFailedWithoutStartingAnything) {
  auto sup = Make();
  v1::Assignment bad_config = Job("job-bad", 5);
  bad_config.mutable_spec()->mutable_train()->set_batch_size(-1);
  sup->Assign(bad_config);
  v1::Assignment bad_slot = Job("job-slot", 5);
  bad_slot.mutable_ranks(0)->set_slots(0, 7);
  sup->Assign(bad_slot);
  v1::Assignment gpu = Job("job-gpu", 5);
  gpu.mutable_spec()->mutable_resources()->set_kind("gpu");
  sup->Assign(gpu);
  Reports r(&box_);
  ASSERT_TRUE(r.WaitFor([](const Messages& m) { return Count(m, v1::RankUpdate::EXITED) == 3; },
                        seconds(5)));
  const auto exited = r.Updates(v1::RankUpdate::EXITED);
  for (const auto& u : exited) EXPECT_EQ(u.exit(), v1::RankUpdate::FAILED) << u.reason();
  EXPECT_NE(exited[0].reason().find("train.batch_size"), std::string::npos) << exited[0].reason();
  EXPECT_NE(exited[1].reason().find("slot 7"), std::string::npos) << exited[1].reason();
  EXPECT_NE(exited[2].reason().find("gpu"), std::string::npos) << exited[2].reason();
  EXPECT_EQ(r.Updates(v1::RankUpdate::STARTED).size(), 0u);
  EXPECT_EQ(sup->running_attempts(), 0);
}

}  // namespace
}  // namespace dyt::worker
