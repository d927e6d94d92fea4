// The Scheduler end to end over real gRPC: workers (TestWorker sessions) register, jobs are
// placed as gangs, run, finish, fail and restart, get preempted, cancelled and watched; a
// restarted scheduler reconciles with reconnecting workers. Every state is checked through the
// public API (GetJob, WatchJob, ...) and the durable store.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "tests/scheduler/service_test_util.h"
#include "tests/scheduler/test_util.h"
#include "tests/scheduler/test_worker.h"

namespace dyt {
namespace {

using std::chrono::milliseconds;
using testing::Context;
using testing::GetJob;
using testing::LogTexts;
using testing::OpenStore;
using testing::RanksSpec;
using testing::Running;
using testing::StatesOf;
using testing::SubmitJob;
using testing::TempDir;
using testing::TestServer;
using testing::TestWorker;
using testing::ValidSpec;
using testing::WaitJob;
using testing::WaitState;

TEST(SchedulerTest, JobRunsToSuccessAndWatchSeesEveryState) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 2);
  std::string id = SubmitJob(server, RanksSpec("ok", 2));

  // A watcher from the start.
  std::vector<v1::Job> seen;
  std::thread watcher([&] {
    v1::WatchJobRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto reader = server.stub().WatchJob(&context, request);
    v1::WatchJobResponse response;
    while (reader->Read(&response)) seen.push_back(response.job());
    EXPECT_TRUE(reader->Finish().ok());
  });

  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->attempt(), 1);
  EXPECT_EQ(a->world_size(), 2);
  ASSERT_EQ(a->ranks_size(), 2);  // both ranks on the one worker, slots 0 and 1
  EXPECT_EQ(a->ranks(0).rank(), 0);
  EXPECT_EQ(a->ranks(1).rank(), 1);
  EXPECT_EQ(a->rendezvous_id(), id + ".a1");
  EXPECT_EQ(a->scheduler_address(), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(GetJob(server, id).state(), v1::SCHEDULED);
  EXPECT_EQ(store->GetJob(id)->job().state(), v1::SCHEDULED);  // durable before it was sent

  worker.StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  v1::WorkerMessage progress;
  v1::RankUpdate* u = progress.mutable_update();
  u->set_job_id(id);
  u->set_attempt(1);
  u->set_rank(0);
  u->set_kind(v1::RankUpdate::PROGRESS);
  u->mutable_progress()->set_step(7);
  u->mutable_progress()->set_steps(10);
  u->mutable_progress()->set_loss(3.5);
  worker.Send(progress);
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.progress().step() == 7; }));
  EXPECT_DOUBLE_EQ(GetJob(server, id).progress().loss(), 3.5);

  worker.ExitAll(*a, v1::RankUpdate::SUCCEEDED);
  ASSERT_TRUE(WaitState(server, id, v1::SUCCEEDED));
  watcher.join();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::SUCCEEDED);
  EXPECT_EQ(StatesOf(seen.back()),
            (std::vector<v1::JobState>{v1::QUEUED, v1::SCHEDULED, v1::RUNNING, v1::SUCCEEDED}));
  EXPECT_EQ(store->GetJob(id)->job().state(), v1::SUCCEEDED);
  EXPECT_EQ(store->GetJob(id)->job().progress().step(), 7);
}

TEST(SchedulerTest, GangWaitsWholeAndWhatCanNeverFitIsHeldWithAReason) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 1);
  TestWorker w2(server.port(), "w2", 1);
  std::string big = SubmitJob(server, RanksSpec("big", 3));
  ASSERT_TRUE(
      WaitJob(server, big, [](const v1::Job& j) { return j.reason().rfind("held:", 0) == 0; }));
  v1::Job held = GetJob(server, big);
  EXPECT_EQ(held.state(), v1::QUEUED);
  EXPECT_NE(held.reason().find("cpu"), std::string::npos) << held.reason();

  // One slot taken: a 2-rank gang waits whole (no partial placement), behind nothing else.
  std::string warm = SubmitJob(server, RanksSpec("warm", 1));
  ASSERT_TRUE(WaitState(server, warm, v1::SCHEDULED));
  std::string gang = SubmitJob(server, RanksSpec("gang", 2));
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(GetJob(server, gang).state(), v1::QUEUED);
  EXPECT_TRUE(GetJob(server, gang).placement().empty());
  EXPECT_EQ(GetJob(server, big).state(), v1::QUEUED);  // held jobs do not block others
}

TEST(SchedulerTest, GangTakesBothWorkersAtOnce) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 1);
  TestWorker w2(server.port(), "w2", 1);
  std::this_thread::sleep_for(milliseconds(200));  // both registered before the submit
  std::string id = SubmitJob(server, RanksSpec("gang", 2));
  auto a1 = w1.TakeAssignment(id);
  auto a2 = w2.TakeAssignment(id);
  ASSERT_TRUE(a1 && a2);
  EXPECT_EQ(a1->ranks_size() + a2->ranks_size(), 2);
  EXPECT_EQ(a1->world_size(), 2);
  EXPECT_NE(a1->ranks(0).rank(), a2->ranks(0).rank());
  v1::Job job = GetJob(server, id);
  ASSERT_EQ(job.placement_size(), 2);
  w1.StartAll(*a1);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(GetJob(server, id).state(), v1::SCHEDULED);  // RUNNING only once every rank started
  w2.StartAll(*a2);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
}

TEST(SchedulerTest, PriorityOrderAndFifoWithinPriority) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get(), {}, [] {
    SchedulerOptions o;
    o.preemption = false;
    return o;
  }());
  // Queue first, with no worker: then one slot frees at a time.
  std::string low = SubmitJob(server, RanksSpec("low", 1, 1));
  std::string high1 = SubmitJob(server, RanksSpec("high1", 1, 5));
  std::string high2 = SubmitJob(server, RanksSpec("high2", 1, 5));
  TestWorker worker(server.port(), "w1", 1);
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    auto m = worker.Take([](const auto& m) { return m.has_assign(); });
    ASSERT_TRUE(m.has_value());
    order.push_back(m->assign().job_id());
    worker.StartAll(m->assign());
    worker.ExitAll(m->assign(), v1::RankUpdate::SUCCEEDED);
  }
  EXPECT_EQ(order, (std::vector<std::string>{high1, high2, low}));
}

TEST(SchedulerTest, HigherPriorityPreemptsAndThePreemptedJobResumes) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 2);
  std::string low = SubmitJob(server, RanksSpec("low", 2, 1));
  auto a = worker.TakeAssignment(low);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  ASSERT_TRUE(WaitState(server, low, v1::RUNNING));

  std::string high = SubmitJob(server, RanksSpec("high", 1, 9));
  auto stop = worker.TakeStop(low);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason(), v1::StopJob::PREEMPT);
  EXPECT_EQ(stop->attempt(), 1);
  EXPECT_NE(GetJob(server, low).reason().find("preempting for " + high), std::string::npos);
  // The trainers checkpoint and exit 3.
  worker.ExitAll(*a, v1::RankUpdate::STOPPED);
  auto h = worker.TakeAssignment(high);
  ASSERT_TRUE(h);
  v1::Job preempted = GetJob(server, low);
  EXPECT_EQ(preempted.state(), v1::QUEUED);
  EXPECT_EQ(preempted.restarts(), 0);  // a preemption is not a failure
  auto states = StatesOf(preempted);
  EXPECT_NE(std::find(states.begin(), states.end(), v1::PREEMPTED), states.end());
  // When the high-priority job ends, the low one comes back as attempt 2.
  worker.StartAll(*h);
  worker.ExitAll(*h, v1::RankUpdate::SUCCEEDED);
  auto again = worker.TakeAssignment(low);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempt(), 2);
}

TEST(SchedulerTest, FailedRankRestartsThenFailsWithStderrTail) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("crashy", 1, 0, /*max_restarts=*/1));
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto a = worker.TakeAssignment(id);
    ASSERT_TRUE(a) << "attempt " << attempt;
    EXPECT_EQ(a->attempt(), attempt);
    worker.StartAll(*a);
    worker.Exited(id, attempt, 0, v1::RankUpdate::FAILED, "exited with code 1",
                  "Traceback\nValueError: boom " + std::to_string(attempt));
  }
  ASSERT_TRUE(WaitState(server, id, v1::FAILED));
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.restarts(), 1);
  // On the first line, before the stderr tail (not on a line of its own after it).
  const std::string first_line = job.reason().substr(0, job.reason().find('\n'));
  EXPECT_EQ(first_line, "rank 0 on w1: exited with code 1; max_restarts 1 reached") << job.reason();
  EXPECT_NE(job.reason().find("ValueError: boom 2"), std::string::npos) << job.reason();
  auto states = StatesOf(job);
  EXPECT_NE(std::find(states.begin(), states.end(), v1::RESTARTING), states.end());
  // The requeue says what the next attempt starts from: nothing was saved, so not "resumes".
  bool said_start_over = false;
  for (const auto& e : job.events()) {
    EXPECT_EQ(e.reason().find("resumes"), std::string::npos) << e.reason();
    said_start_over |=
        e.state() == v1::QUEUED && e.reason() == "requeued; starts over (no checkpoint yet)";
  }
  EXPECT_TRUE(said_start_over) << job.DebugString();
}

// Ranks stopped by their worker for a cause of the cluster's (the scheduler unreachable past
// the orphan timeout, the worker shutting down) are requeued without spending a restart, and
// the event says how they ended; a stop nobody asked for is a failure that says how too.
TEST(SchedulerTest, RanksStoppedByTheirWorkerSpendNoRestart) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.restart_backoff = milliseconds(0);
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  const std::string id = SubmitJob(server, RanksSpec("orphaned", 1, 0, /*max_restarts=*/1));
  auto stop = [&](int attempt, bool by_worker, const std::string& reason) {
    worker.Exited(id, attempt, 0, v1::RankUpdate::STOPPED, reason, "", /*exit_code=*/3, by_worker);
  };
  for (int attempt = 1; attempt <= 3; ++attempt) {  // more than max_restarts
    auto a = worker.TakeAssignment(id);
    ASSERT_TRUE(a) << "attempt " << attempt;
    worker.StartAll(*a);
    stop(attempt, true, "stopped (scheduler unreachable): exited with code 3 after a checkpoint");
  }
  // (Requeued at once, and placed again: wait for the events, not for a passing state.)
  auto preempted = [](const v1::Job& j) {
    return std::count_if(j.events().begin(), j.events().end(),
                         [](const v1::JobEvent& e) { return e.state() == v1::PREEMPTED; });
  };
  ASSERT_TRUE(WaitJob(server, id, [&](const v1::Job& j) { return preempted(j) == 3; }))
      << GetJob(server, id).DebugString();
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.restarts(), 0);
  bool said = false;
  for (const auto& e : job.events()) {
    said |= e.state() == v1::PREEMPTED &&
            e.reason() ==
                "stopped by its worker, not the job's fault (rank 0: stopped (scheduler "
                "unreachable): exited with code 3 after a checkpoint)";
  }
  EXPECT_TRUE(said) << job.DebugString();
  // A stop no one asked for (a stray SIGTERM): a failure, spending a restart, saying how.
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  stop(4, false, "exited with code 3 after a checkpoint");
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.restarts() == 1; }))
      << GetJob(server, id).DebugString();
  job = GetJob(server, id);
  bool failed_with_how = false;
  for (const auto& e : job.events()) {
    failed_with_how |=
        e.state() == v1::RESTARTING && e.reason().find(
                                           "ranks stopped without a request (rank 0: exited with "
                                           "code 3 after a checkpoint)") == 0;
  }
  EXPECT_TRUE(failed_with_how) << job.DebugString();
}

// A gang across two workers: one worker lost the scheduler first and stopped its rank; the
// peer on the other worker followed (exit 3, FAILED by its worker, which did not ask), and may
// report first. Decided once both have: the cluster's doing, no restart spent.
TEST(SchedulerTest, APeerThatFollowedARankItsWorkerStoppedSpendsNoRestart) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 1);
  TestWorker w2(server.port(), "w2", 1);
  const std::string id = SubmitJob(server, RanksSpec("gang", 2, 0, /*max_restarts=*/0));
  auto a1 = w1.TakeAssignment(id);
  auto a2 = w2.TakeAssignment(id);
  ASSERT_TRUE(a1 && a2);
  w1.StartAll(*a1);
  w2.StartAll(*a2);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  for (const auto& r : a2->ranks()) {
    w2.Exited(id, 1, r.rank(), v1::RankUpdate::FAILED, "exited with code 3 after a checkpoint", "",
              /*exit_code=*/3);
  }
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(GetJob(server, id).state(), v1::RUNNING) << "not decided on one rank's word";
  for (const auto& r : a1->ranks()) {
    w1.Exited(id, 1, r.rank(), v1::RankUpdate::STOPPED,
              "stopped (scheduler unreachable): exited with code 3 after a checkpoint", "",
              /*exit_code=*/3, /*stopped_by_worker=*/true);
  }
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) {
    return j.state() == v1::QUEUED || j.state() == v1::SCHEDULED || j.state() == v1::FAILED;
  })) << GetJob(server, id).DebugString();
  const v1::Job job = GetJob(server, id);
  EXPECT_NE(job.state(), v1::FAILED) << job.DebugString();
  EXPECT_EQ(job.restarts(), 0);
}

// submit --dry-run: every check of a submission, and where the job would run now; nothing is
// stored or queued.
TEST(SchedulerTest, ADryRunChecksAndPreviewsPlacementWithoutQueueing) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  auto preview = [&](const v1::JobSpec& spec, grpc::Status* status = nullptr) {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    request.set_validate_only(true);
    v1::SubmitJobResponse response;
    grpc::Status s = server.stub().SubmitJob(Context().get(), request, &response);
    if (status != nullptr) *status = s;
    EXPECT_TRUE(status != nullptr || s.ok()) << s.error_message();
    EXPECT_EQ(response.job().id(), "");
    return response.job().reason();
  };
  EXPECT_EQ(preview(RanksSpec("one", 1)),
            "would be held: asks 1 rank x 1 cpu slot; there are no schedulable cpu workers "
            "(connected, not drained nor shutting down)");
  TestWorker worker(server.port(), "w1", 2);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (preview(RanksSpec("one", 1)) != "would start now on w1" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(preview(RanksSpec("one", 1)), "would start now on w1");
  EXPECT_EQ(preview(RanksSpec("three", 3)).rfind("would be held: asks 3 ranks x 1 cpu slot; ", 0),
            0u);
  // Both slots taken by a real job: a dry run would wait.
  const std::string id = SubmitJob(server, RanksSpec("busy", 2));
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  EXPECT_EQ(preview(RanksSpec("one", 1)), "would wait for 1 x 1 cpu slots (0 of 2 free now)");
  // The rules of a submission hold: an invalid spec is refused as a submission would be.
  v1::JobSpec bad = RanksSpec("bad", 1);
  bad.mutable_train()->set_batch_size(0);
  grpc::Status status;
  preview(bad, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "spec.train.batch_size: must be >= 1 (got 0)");
  // Only the real job was stored.
  auto page = store->ListJobs({}, 100, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].job().id(), id);
}

// A stop request can be lost (the worker had no session when it was sent; the scheduler
// crashed after storing the preemption): a preempting job whose ranks still run gets it again.
TEST(SchedulerTest, APreemptionStopIsSentAgainWhileTheRanksStillRun) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.stop_resend = milliseconds(300);
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  const std::string low = SubmitJob(server, RanksSpec("low", 1, 1));
  auto a = worker.TakeAssignment(low);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  ASSERT_TRUE(WaitState(server, low, v1::RUNNING));
  const std::string high = SubmitJob(server, RanksSpec("high", 1, 9));
  ASSERT_TRUE(worker.TakeStop(low));
  // Not acted on (as if lost): it comes again, and again.
  for (int i = 0; i < 2; ++i) {
    auto again = worker.TakeStop(low, milliseconds(5000));
    ASSERT_TRUE(again) << "stop " << i + 2 << " never came";
    EXPECT_EQ(again->reason(), v1::StopJob::PREEMPT);
  }
  worker.ExitAll(*a, v1::RankUpdate::STOPPED);
  ASSERT_TRUE(worker.TakeAssignment(high));
  // Once the ranks are gone, nothing more.
  EXPECT_FALSE(worker.TakeStop(low, milliseconds(1000)));
}

// A stop decided while the job's worker had no session (here a time limit reached while it
// reconnects) reaches it as soon as it registers again, not a resend interval later.
TEST(SchedulerTest, AStopDecidedWhileTheWorkerWasAwayIsSentWhenItReturns) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());  // stop_resend: the default 10 s
  auto worker = std::make_unique<TestWorker>(server.port(), "w1", 1);
  v1::JobSpec spec = RanksSpec("timed", 1);
  spec.set_time_limit_s(1);
  const std::string id = SubmitJob(server, spec);
  auto a = worker->TakeAssignment(id);
  ASSERT_TRUE(a);
  worker->StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  worker.reset();  // the session ends; the worker is not lost yet (heartbeat timeout 10 s)
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (GetJob(server, id).reason().rfind("stopping: time_limit_s 1 reached", 0) != 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(GetJob(server, id).reason().rfind("stopping: time_limit_s 1 reached", 0), 0u);
  TestWorker back(server.port(), "w1", 1, "cpu", {Running(id, a->attempt(), 0, {0})});
  auto stop = back.TakeStop(id, milliseconds(3000));
  ASSERT_TRUE(stop) << "the stop waited for the resend interval";
  EXPECT_EQ(stop->reason(), v1::StopJob::PREEMPT);
  back.Exited(id, a->attempt(), 0, v1::RankUpdate::STOPPED, "exited with code 3", "", 3);
  ASSERT_TRUE(WaitState(server, id, v1::FAILED));
}

// spec.time_limit_s (Slurm's --time): running time counts over all attempts; at the limit the
// ranks are stopped with a checkpoint (PREEMPT: SIGTERM, save, exit 3) and the job ends FAILED,
// not requeued, whatever restarts it has left.
TEST(SchedulerTest, ATimeLimitCountsEveryAttemptAndEndsTheJobAfterACheckpoint) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 1);
  v1::JobSpec spec = RanksSpec("timed", 1, 0, /*max_restarts=*/3);
  spec.set_time_limit_s(3);
  const std::string id = SubmitJob(server, spec);
  // Attempt 1 runs 1.5 s, then fails: it is restarted, its time counted.
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_FALSE(worker.TakeStop(id, milliseconds(10)));
  worker.Exited(id, 1, 0, v1::RankUpdate::FAILED, "exited with code 1");
  auto b = worker.TakeAssignment(id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->attempt(), 2);
  v1::Job job = GetJob(server, id);
  EXPECT_GE(job.run_seconds(), 1.5);
  EXPECT_LT(job.run_seconds(), 3.0);
  EXPECT_FALSE(job.has_running_since());
  worker.StartAll(*b);
  const auto running = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  EXPECT_TRUE(GetJob(server, id).has_running_since());
  // The rest of the limit is attempt 2's first 1.5 s: stopped then, with a checkpoint.
  auto stop = worker.TakeStop(id, milliseconds(5000));
  ASSERT_TRUE(stop);
  const auto after = std::chrono::steady_clock::now() - running;
  EXPECT_EQ(stop->reason(), v1::StopJob::PREEMPT);
  EXPECT_EQ(stop->attempt(), 2);
  EXPECT_GE(after, milliseconds(1000));
  EXPECT_LT(after, milliseconds(2600)) << "attempt 1's time was not counted";
  EXPECT_EQ(GetJob(server, id).reason(),
            "stopping: time_limit_s 3 reached; the trainers save a checkpoint");
  worker.Exited(id, 2, 0, v1::RankUpdate::STOPPED, "exited with code 3 after a checkpoint", "", 3);
  ASSERT_TRUE(WaitState(server, id, v1::FAILED));
  job = GetJob(server, id);
  EXPECT_EQ(job.reason().rfind("time limit: its attempts ran ", 0), 0u) << job.reason();
  EXPECT_NE(job.reason().find(" s, time_limit_s is 3 (this attempt: stopped at its time "
                              "limit); it has no checkpoint"),
            std::string::npos)
      << job.reason();
  EXPECT_GE(job.run_seconds(), 3.0);
  EXPECT_EQ(job.restarts(), 1);  // restarts were left; the limit ends it all the same
  EXPECT_FALSE(worker.TakeAssignment(id, milliseconds(500)));
}

// Restarts back off (the base, doubled per restart): a transient fault does not use up
// max_restarts within a second. The waiting job blocks nobody.
TEST(SchedulerTest, RestartsBackOffDoublingEachTime) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.restart_backoff = milliseconds(400);
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("flaky", 1, 0, /*max_restarts=*/2));
  auto fail = [&](int attempt) -> std::chrono::steady_clock::time_point {
    auto a = worker.TakeAssignment(id);
    EXPECT_TRUE(a) << "attempt " << attempt;
    if (!a) return {};
    EXPECT_EQ(a->attempt(), attempt);
    worker.StartAll(*a);
    worker.Exited(id, attempt, 0, v1::RankUpdate::FAILED, "exited with code 1");
    return std::chrono::steady_clock::now();
  };
  auto failed_at = fail(1);
  // Meanwhile another job takes the free slot at once and finishes.
  std::string other = SubmitJob(server, RanksSpec("other", 1));
  auto b = worker.TakeAssignment(other, milliseconds(300));
  ASSERT_TRUE(b) << "a job in backoff blocked the queue";
  worker.StartAll(*b);
  worker.ExitAll(*b, v1::RankUpdate::SUCCEEDED);
  ASSERT_TRUE(WaitState(server, other, v1::SUCCEEDED));
  auto second = worker.TakeAssignment(id);
  ASSERT_TRUE(second);
  EXPECT_GE(std::chrono::steady_clock::now() - failed_at, milliseconds(350));
  worker.StartAll(*second);
  worker.Exited(id, 2, 0, v1::RankUpdate::FAILED, "exited with code 1");
  failed_at = std::chrono::steady_clock::now();
  EXPECT_FALSE(worker.TakeAssignment(id, milliseconds(600))) << "the second backoff is 800 ms";
  ASSERT_TRUE(worker.TakeAssignment(id));
  EXPECT_GE(std::chrono::steady_clock::now() - failed_at, milliseconds(750));
  v1::Job job = GetJob(server, id);
  bool said = false;
  for (const auto& e : job.events()) {
    said |= e.state() == v1::RESTARTING &&
            e.reason().find("(restart 2 of 2, in 0.8 s)") != std::string::npos;
  }
  EXPECT_TRUE(said) << job.DebugString();
}

// Exit code 2 is dyt-train's "invalid configuration": the job fails at once, restarts unspent.
TEST(SchedulerTest, ConfigurationErrorIsNotRetried) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("misconfigured", 1, 0, /*max_restarts=*/3));
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  worker.Exited(id, a->attempt(), 0, v1::RankUpdate::FAILED, "exited with code 2",
                "E invalid job config: data.train_paths[0]: shard not found", /*exit_code=*/2);
  ASSERT_TRUE(WaitState(server, id, v1::FAILED));
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_NE(job.reason().find("configuration error: not retried"), std::string::npos)
      << job.reason();
  EXPECT_FALSE(worker.TakeAssignment(id, milliseconds(300)));
}

TEST(SchedulerTest, LostWorkerRequeuesOnRemainingCapacity) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.heartbeat_timeout = milliseconds(600);
  TestServer server(store.get(), {}, options);
  auto doomed = std::make_unique<TestWorker>(server.port(), "doomed", 1);
  std::string id = SubmitJob(server, RanksSpec("survivor", 1, 0, 2));
  auto a = doomed->TakeAssignment(id);
  ASSERT_TRUE(a);
  doomed->StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  TestWorker spare(server.port(), "spare", 1);
  doomed->StopHeartbeats();  // hung: the stream stays open, heartbeats stop
  auto b = spare.TakeAssignment(id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->attempt(), 2);
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.restarts(), 1);
  // Each attempt's workers are kept (where each attempt's rank logs are).
  ASSERT_EQ(job.attempt_workers_size(), 2) << job.DebugString();
  EXPECT_EQ(job.attempt_workers(0).attempt(), 1);
  EXPECT_EQ(std::vector<std::string>(job.attempt_workers(0).worker_ids().begin(),
                                     job.attempt_workers(0).worker_ids().end()),
            std::vector<std::string>{"doomed"});
  EXPECT_EQ(job.attempt_workers(1).attempt(), 2);
  EXPECT_EQ(std::vector<std::string>(job.attempt_workers(1).worker_ids().begin(),
                                     job.attempt_workers(1).worker_ids().end()),
            std::vector<std::string>{"spare"});
  auto states = StatesOf(job);
  EXPECT_NE(std::find(states.begin(), states.end(), v1::RESTARTING), states.end());
  bool said_why = false;
  for (const auto& e : job.events()) {
    said_why |= e.reason().find("doomed missed heartbeats") != std::string::npos;
  }
  EXPECT_TRUE(said_why);
}

// A worker taken for lost comes back still running the old attempt: that rank's slots stay
// taken until it has exited, so the requeued job is not placed on them (the worker would refuse
// it, "slot 0 is already in use", and every restart would burn in milliseconds).
TEST(SchedulerTest, AStaleRankOfAReturningWorkerHoldsItsSlotsUntilItExits) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.heartbeat_timeout = milliseconds(600);
  TestServer server(store.get(), {}, options);
  auto hung = std::make_unique<TestWorker>(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("survivor", 1, 0, 2));
  auto a = hung->TakeAssignment(id);
  ASSERT_TRUE(a);
  hung->StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  hung->StopHeartbeats();
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.restarts() == 1; }));
  hung.reset();
  TestWorker back(server.port(), "w1", 1, "cpu", {testing::Running(id, 1, 0, {0})});
  auto stop = back.TakeStop(id);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason(), v1::StopJob::STALE);
  EXPECT_FALSE(back.TakeAssignment(id, milliseconds(800))) << "placed on the stale rank's slot";
  back.Exited(id, 1, 0, v1::RankUpdate::STOPPED);
  auto b = back.TakeAssignment(id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->attempt(), 2);
}

TEST(SchedulerTest, CancelStopsRanksAndFreesSlotsWhenTheyExit) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 1);
  std::string first = SubmitJob(server, RanksSpec("first", 1));
  auto a = worker.TakeAssignment(first);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  std::string second = SubmitJob(server, RanksSpec("second", 1));
  v1::CancelJobRequest cancel;
  cancel.set_id(first);
  cancel.set_reason("wrong lr");
  v1::Job out;
  ASSERT_TRUE(server.stub().CancelJob(Context().get(), cancel, &out).ok());
  EXPECT_EQ(out.state(), v1::CANCELLED);
  auto stop = worker.TakeStop(first);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason(), v1::StopJob::CANCEL);
  EXPECT_GT(stop->grace_ms(), 0);
  // The slot is still in use until the rank exits.
  EXPECT_FALSE(worker.TakeAssignment(second, milliseconds(400)));
  worker.ExitAll(*a, v1::RankUpdate::STOPPED);
  EXPECT_TRUE(worker.TakeAssignment(second));
  EXPECT_EQ(GetJob(server, first).state(), v1::CANCELLED);
}

// The ranks of a cancelled job save a checkpoint on the SIGTERM that stops them, after the job
// has ended: that checkpoint is kept (listed, the job's last_checkpoint_step), but only from a
// worker where that attempt still has ranks.
TEST(SchedulerTest, CheckpointSavedWhileACancelledJobStopsIsKept) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.artifact_root = dir.Join("artifacts");
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  TestWorker other(server.port(), "w2", 1);
  std::string id = SubmitJob(server, RanksSpec("stopping", 1));
  std::optional<v1::Assignment> a;
  TestWorker* ran = &worker;
  for (int i = 0; i < 50 && !a; ++i) {  // placed on either worker
    a = worker.TakeAssignment(id, milliseconds(100));
    if (!a) {
      a = other.TakeAssignment(id, milliseconds(100));
      ran = &other;
    }
  }
  ASSERT_TRUE(a);
  TestWorker* idle = ran == &worker ? &other : &worker;
  ran->StartAll(*a);
  v1::CancelJobRequest cancel;
  cancel.set_id(id);
  v1::Job out;
  ASSERT_TRUE(server.stub().CancelJob(Context().get(), cancel, &out).ok());
  ASSERT_TRUE(ran->TakeStop(id));
  auto checkpoint = [&](int64_t step) {
    std::string path = a->checkpoint_dir() + "/step-0000000" + std::to_string(step);
    std::filesystem::create_directories(path);
    std::ofstream(path + "/manifest.json") << "{\"step\": " << step << "}";
    v1::WorkerMessage m;
    v1::CheckpointRecord* c = m.mutable_checkpoint()->mutable_checkpoint();
    c->set_job_id(id);
    c->set_step(step);
    c->set_attempt(a->attempt());
    c->set_path(path);
    return m;
  };
  idle->Send(checkpoint(8));  // never ran there: refused
  ran->Send(checkpoint(9));
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.last_checkpoint_step() == 9; }));
  ran->ExitAll(*a, v1::RankUpdate::STOPPED);
  ran->Send(checkpoint(7));  // after its ranks exited: refused
  v1::ListCheckpointsRequest list;
  list.set_job_id(id);
  v1::ListCheckpointsResponse listed;
  std::this_thread::sleep_for(milliseconds(500));  // time for a wrong acceptance to show
  ASSERT_TRUE(server.stub().ListCheckpoints(Context().get(), list, &listed).ok());
  ASSERT_EQ(listed.checkpoints_size(), 1);
  EXPECT_EQ(listed.checkpoints(0).step(), 9);
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.state(), v1::CANCELLED);
  EXPECT_EQ(job.last_checkpoint_step(), 9);
}

// A cancelled job's ranks report, as they exit, the step they reached after the cancel: the
// job's progress shows it (only from the worker that ran them).
TEST(SchedulerTest, ACancelledJobShowsTheStepItsRanksStoppedAt) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("stopping", 1));
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  TestWorker stranger(server.port(), "w2", 1);
  worker.StartAll(*a);
  auto exited_at = [&](int64_t step) {
    v1::WorkerMessage m;
    v1::RankUpdate* u = m.mutable_update();
    u->set_job_id(id);
    u->set_attempt(a->attempt());
    u->set_rank(0);
    u->set_kind(step == 5 ? v1::RankUpdate::PROGRESS : v1::RankUpdate::EXITED);
    if (step != 5) u->set_exit(v1::RankUpdate::STOPPED);
    u->mutable_progress()->set_step(step);
    u->mutable_progress()->set_steps(1000);
    u->mutable_progress()->set_loss(10.0 / static_cast<double>(step));
    return m;
  };
  worker.Send(exited_at(5));  // a PROGRESS update
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.progress().step() == 5; }));
  v1::CancelJobRequest cancel;
  cancel.set_id(id);
  v1::Job out;
  ASSERT_TRUE(server.stub().CancelJob(Context().get(), cancel, &out).ok());
  ASSERT_TRUE(worker.TakeStop(id));
  stranger.Send(exited_at(50));  // never ran it: ignored
  worker.Send(exited_at(7));
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.progress().step() == 7; }));
  std::this_thread::sleep_for(milliseconds(300));  // time for a wrong acceptance to show
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.state(), v1::CANCELLED);
  EXPECT_EQ(job.progress().step(), 7);
  EXPECT_DOUBLE_EQ(job.progress().loss(), 10.0 / 7);
}

// A worker speaks for its own ranks only: another worker's token cannot finish, fail, move or
// fill the logs of a job that runs elsewhere (it could mark a running job SUCCEEDED while its
// trainer ran on). The worker that runs it is heard, also for the last lines after its exit.
TEST(SchedulerTest, AWorkerSpeaksOnlyForItsOwnRanks) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.artifact_root = dir.Join("artifacts");
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("mine", 1));
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  TestWorker stranger(server.port(), "w2", 1);
  worker.StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));

  auto progress = [&](int64_t step) {
    v1::WorkerMessage m;
    v1::RankUpdate* u = m.mutable_update();
    u->set_job_id(id);
    u->set_attempt(a->attempt());
    u->set_rank(0);
    u->set_kind(v1::RankUpdate::PROGRESS);
    u->mutable_progress()->set_step(step);
    u->mutable_progress()->set_steps(1000);
    return m;
  };
  auto lines = [&](const std::string& text) {
    v1::WorkerMessage m;
    v1::LogBatch* logs = m.mutable_logs();
    logs->set_job_id(id);
    logs->set_attempt(a->attempt());
    logs->set_rank(0);
    logs->add_lines(text);
    return m;
  };
  v1::WorkerMessage forged_checkpoint;
  v1::CheckpointRecord* c = forged_checkpoint.mutable_checkpoint()->mutable_checkpoint();
  c->set_job_id(id);
  c->set_attempt(a->attempt());
  c->set_step(999999);
  c->set_path(a->checkpoint_dir() + "/step-00999999");
  stranger.Send(progress(399999));
  stranger.Send(forged_checkpoint);
  stranger.Send(lines("forged line"));
  stranger.Exited(id, a->attempt(), 0, v1::RankUpdate::FAILED, "forged failure", "", 2);
  stranger.Exited(id, a->attempt(), 0, v1::RankUpdate::SUCCEEDED);
  worker.Send(progress(5));
  worker.Send(lines("real line"));
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.progress().step() == 5; }));
  std::this_thread::sleep_for(milliseconds(300));  // time for a wrong acceptance to show
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.state(), v1::RUNNING);
  EXPECT_EQ(job.last_checkpoint_step(), 0);
  EXPECT_EQ(job.restarts(), 0);

  worker.ExitAll(*a, v1::RankUpdate::SUCCEEDED);
  ASSERT_TRUE(WaitState(server, id, v1::SUCCEEDED));
  worker.Send(lines("its last line, after the exit"));
  std::this_thread::sleep_for(milliseconds(300));
  v1::GetJobLogsRequest request;
  request.set_id(id);
  EXPECT_EQ(LogTexts(server, request),
            (std::vector<std::string>{"real line", "its last line, after the exit"}));
}

// Two daemons given one worker id: the second is refused while the first lives (they used to
// replace each other's session every second and stop each other's trainers); once the first
// falls silent, a new process under that id is the worker again.
TEST(SchedulerTest, ASecondLiveWorkerUnderTheSameIdIsRefused) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.heartbeat_interval = milliseconds(100);
  TestServer server(store.get(), {}, options);
  TestWorker first(server.port(), "w1", 1, "cpu", {}, false, "instance-a");
  std::string id = SubmitJob(server, RanksSpec("kept", 1));
  auto a = first.TakeAssignment(id);
  ASSERT_TRUE(a);
  first.StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));

  TestWorker duplicate(server.port(), "w1", 2, "cpu", {}, false, "instance-b");
  for (int i = 0; i < 100 && !duplicate.ended(); ++i) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_TRUE(duplicate.ended()) << "the duplicate's session was accepted";
  EXPECT_FALSE(first.TakeStop(id, milliseconds(500))) << "the running job was stopped";
  EXPECT_FALSE(first.ended());
  EXPECT_EQ(GetJob(server, id).state(), v1::RUNNING);
  // The same instance reconnecting is the same worker (its old session is replaced).
  TestWorker again(server.port(), "w1", 1, "cpu", {Running(id, a->attempt(), 0, {0})}, false,
                   "instance-a");
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(again.ended());

  // Silent for more than three heartbeats: another process may take the id.
  again.StopHeartbeats();
  first.StopHeartbeats();
  std::this_thread::sleep_for(milliseconds(400));
  TestWorker replacement(server.port(), "w1", 1, "cpu", {Running(id, a->attempt(), 0, {0})}, false,
                         "instance-c");
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(replacement.ended());
  EXPECT_EQ(GetJob(server, id).state(), v1::RUNNING);
}

TEST(SchedulerTest, RendezvousWaitsForRankZeroAndRejectsStaleAttempts) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 2);
  std::string id = SubmitJob(server, RanksSpec("rdzv", 2));
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  std::string got;
  std::thread waiter([&] {
    v1::GetRendezvousRequest get;
    get.set_job_id(id);
    get.set_attempt(1);
    get.set_key("gloo.addr");
    get.set_timeout_ms(10000);
    v1::GetRendezvousResponse response;
    grpc::Status status = server.worker_stub().GetRendezvous(Context().get(), get, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    got = response.value();
  });
  std::this_thread::sleep_for(milliseconds(200));
  v1::SetRendezvousRequest set;
  set.set_job_id(id);
  set.set_attempt(1);
  set.set_key("gloo.addr");
  set.set_value(std::string("10.0.0.1:1234\0x", 15));
  v1::SetRendezvousResponse ok;
  ASSERT_TRUE(server.worker_stub().SetRendezvous(Context().get(), set, &ok).ok());
  waiter.join();
  EXPECT_EQ(got, set.value());

  set.set_attempt(7);  // not the running attempt
  grpc::Status stale = server.worker_stub().SetRendezvous(Context().get(), set, &ok);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  set.set_attempt(1);
  set.set_key("../etc");
  EXPECT_EQ(server.worker_stub().SetRendezvous(Context().get(), set, &ok).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetRendezvousRequest missing;
  missing.set_job_id(id);
  missing.set_attempt(1);
  missing.set_key("never");
  missing.set_timeout_ms(300);
  v1::GetRendezvousResponse none;
  grpc::Status timed_out = server.worker_stub().GetRendezvous(Context().get(), missing, &none);
  EXPECT_EQ(timed_out.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_NE(timed_out.error_message().find("never"), std::string::npos);
}

TEST(SchedulerTest, LogsTailAndFollowUntilTheJobEnds) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("chatty", 1));
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  auto send_lines = [&](int from, int to) {
    v1::WorkerMessage m;
    v1::LogBatch* logs = m.mutable_logs();
    logs->set_job_id(id);
    logs->set_attempt(1);
    logs->set_rank(0);
    for (int i = from; i < to; ++i) logs->add_lines("line " + std::to_string(i));
    worker.Send(m);
  };
  send_lines(0, 5);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  std::this_thread::sleep_for(milliseconds(200));
  v1::GetJobLogsRequest request;
  request.set_id(id);
  request.set_tail(2);
  EXPECT_EQ(LogTexts(server, request), (std::vector<std::string>{"line 3", "line 4"}));
  request.set_follow(true);
  std::vector<std::string> followed;
  std::thread follower([&] { followed = LogTexts(server, request); });
  std::this_thread::sleep_for(milliseconds(300));
  send_lines(5, 8);
  std::this_thread::sleep_for(milliseconds(300));
  worker.ExitAll(*a, v1::RankUpdate::SUCCEEDED);
  follower.join();  // ends by itself once the job has finished
  EXPECT_EQ(followed, (std::vector<std::string>{"line 3", "line 4", "line 5", "line 6", "line 7"}));
}

// spec.init_from_job: a new job starts from another job's checkpoint; the submission checks it
// exists (latest, or the step asked for) and the assignment names its directory.
TEST(SchedulerTest, AJobStartsFromAnotherJobsCheckpoint) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.artifact_root = dir.Join("artifacts");
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  const std::string first = SubmitJob(server, RanksSpec("first", 1));
  auto a = worker.TakeAssignment(first);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->init_checkpoint(), "");
  worker.StartAll(*a);
  auto submit = [&](const std::string& from, int64_t step, grpc::Status* status) {
    v1::JobSpec spec = RanksSpec("second", 1);
    spec.set_init_from_job(from);
    spec.set_init_from_step(step);
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    v1::SubmitJobResponse response;
    *status = server.stub().SubmitJob(Context().get(), request, &response);
    return response.job();
  };
  grpc::Status status;
  {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = RanksSpec("alone", 1);
    request.mutable_spec()->set_init_from_weights_only(true);
    v1::SubmitJobResponse response;
    status = server.stub().SubmitJob(Context().get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "spec.init_from_weights_only: needs spec.init_from_job");
  }
  submit("job-000000000099", 0, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("spec.init_from_job"), std::string::npos)
      << status.error_message();
  submit(first, 0, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(),
            "spec.init_from_job: job " + first + " has no checkpoint to start from");
  for (int64_t step : {10, 20}) {
    v1::WorkerMessage m;
    v1::CheckpointRecord* c = m.mutable_checkpoint()->mutable_checkpoint();
    c->set_job_id(first);
    c->set_step(step);
    c->set_attempt(1);
    c->set_path(a->checkpoint_dir() + "/step-000000" + std::to_string(step));
    worker.Send(m);
  }
  ASSERT_TRUE(
      WaitJob(server, first, [](const v1::Job& j) { return j.last_checkpoint_step() == 20; }));
  submit(first, 15, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(),
            "spec.init_from_step: job " + first + " has no checkpoint at step 15 (it has: 10, 20)");
  // The latest, its step filled in; the assignment names its directory.
  worker.ExitAll(*a, v1::RankUpdate::SUCCEEDED);
  const v1::Job second = submit(first, 0, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(second.spec().init_from_step(), 20);
  auto b = worker.TakeAssignment(second.id());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->init_checkpoint(), options.artifact_root + "/" + first + "/step-00000020");
}

TEST(SchedulerTest, CheckpointsAreListedAndDownloadedWithHashesAndResume) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.artifact_root = dir.Join("artifacts");
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  std::string id = SubmitJob(server, RanksSpec("ckpt", 1));
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->checkpoint_dir(), options.artifact_root + "/" + id);
  worker.StartAll(*a);
  // A checkpoint as the trainer writes it.
  std::string ckpt = a->checkpoint_dir() + "/step-00000010";
  std::filesystem::create_directories(ckpt);
  std::string model(100000, '\0');
  for (size_t i = 0; i < model.size(); ++i) model[i] = static_cast<char>(i * 7);
  std::ofstream(ckpt + "/model.safetensors", std::ios::binary) << model;
  std::ofstream(ckpt + "/manifest.json") << "{\"step\": 10}";
  v1::WorkerMessage m;
  v1::CheckpointRecord* c = m.mutable_checkpoint()->mutable_checkpoint();
  c->set_job_id(id);
  c->set_step(10);
  c->set_attempt(1);
  c->set_path(ckpt);
  v1::CheckpointFile* f = c->add_files();
  f->set_name("model.safetensors");
  f->set_size(static_cast<int64_t>(model.size()));
  f->set_sha256(Sha256Hex(model));
  c->set_total_bytes(static_cast<int64_t>(model.size()));
  worker.Send(m);
  ASSERT_TRUE(WaitJob(server, id, [](const v1::Job& j) { return j.last_checkpoint_step() == 10; }));

  v1::ListCheckpointsRequest list;
  list.set_job_id(id);
  v1::ListCheckpointsResponse listed;
  ASSERT_TRUE(server.stub().ListCheckpoints(Context().get(), list, &listed).ok());
  ASSERT_EQ(listed.checkpoints_size(), 1);
  EXPECT_EQ(listed.checkpoints(0).step(), 10);

  auto download = [&](const std::string& file, int64_t offset) {
    v1::DownloadCheckpointRequest request;
    request.set_job_id(id);
    request.set_file(file);
    request.set_offset(offset);
    request.set_chunk_bytes(4096);
    grpc::ClientContext context;
    auto reader = server.stub().DownloadCheckpoint(&context, request);
    std::map<std::string, std::string> data, sha;
    v1::DownloadCheckpointResponse r;
    while (reader->Read(&r)) {
      if (!r.sha256().empty()) sha[r.file()] = r.sha256();
      int64_t start = r.file() == file ? offset : 0;
      EXPECT_EQ(r.offset(), start + int64_t(data[r.file()].size())) << r.file();
      data[r.file()] += r.data();
    }
    EXPECT_TRUE(reader->Finish().ok());
    return std::make_pair(data, sha);
  };
  auto [data, sha] = download("", 0);
  EXPECT_EQ(data["model.safetensors"], model);
  EXPECT_EQ(sha["model.safetensors"], Sha256Hex(model));
  EXPECT_EQ(data["manifest.json"], "{\"step\": 10}");
  EXPECT_EQ(sha["manifest.json"], Sha256Hex("{\"step\": 10}"));
  auto [rest, _] = download("model.safetensors", 50000);
  EXPECT_EQ(rest["model.safetensors"], model.substr(50000));

  v1::DownloadCheckpointRequest bad;
  bad.set_job_id(id);
  bad.set_file("../../etc/passwd");
  grpc::ClientContext context;
  auto reader = server.stub().DownloadCheckpoint(&context, bad);
  v1::DownloadCheckpointResponse r;
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A checkpoint reported outside the job's artifact dir is refused.
  c->set_path("/tmp/elsewhere");
  c->set_step(20);
  worker.Send(m);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(GetJob(server, id).last_checkpoint_step(), 10);
}

TEST(SchedulerTest, RestartedSchedulerKeepsRunningJobsOfReconnectingWorkers) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  std::string kept, orphan;
  int port = 0;
  {
    TestServer server(store.get());
    port = server.port();
    TestWorker worker(server.port(), "w1", 2);
    kept = SubmitJob(server, RanksSpec("kept", 1));
    auto a = worker.TakeAssignment(kept);
    ASSERT_TRUE(a);
    worker.StartAll(*a);
    ASSERT_TRUE(WaitState(server, kept, v1::RUNNING));
  }
  (void)port;
  SchedulerOptions options;
  options.heartbeat_timeout = milliseconds(1500);
  TestServer server(store.get(), {}, options);
  EXPECT_EQ(GetJob(server, kept).state(), v1::RUNNING);
  TestWorker worker(server.port(), "w1", 2, "cpu",
                    {testing::Running(kept, 1, 0), testing::Running("job-000000000999", 3, 0)});
  auto stop = worker.TakeStop("job-000000000999");
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason(), v1::StopJob::STALE);
  // Past the heartbeat timeout the job is still running: the worker came back in time.
  std::this_thread::sleep_for(milliseconds(2000));
  EXPECT_EQ(GetJob(server, kept).state(), v1::RUNNING);
  EXPECT_EQ(GetJob(server, kept).attempt(), 1);
  worker.Exited(kept, 1, 0, v1::RankUpdate::SUCCEEDED);
  ASSERT_TRUE(WaitState(server, kept, v1::SUCCEEDED));
}

TEST(SchedulerTest, WorkersAreListedWithBusySlots) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker worker(server.port(), "w1", 3);
  std::string id = SubmitJob(server, RanksSpec("busy", 2));
  ASSERT_TRUE(worker.TakeAssignment(id));
  v1::ListWorkersResponse response;
  ASSERT_TRUE(server.stub().ListWorkers(Context().get(), {}, &response).ok());
  ASSERT_EQ(response.workers_size(), 1);
  const v1::WorkerStatus& w = response.workers(0);
  EXPECT_EQ(w.id(), "w1");
  EXPECT_EQ(w.slots(), 3);
  EXPECT_EQ(w.slots_busy(), 2);
  EXPECT_TRUE(w.connected());
  ASSERT_EQ(w.job_ids_size(), 1);
  EXPECT_EQ(w.job_ids(0), id);
}

TEST(SchedulerTest, BadRegistrationIsRefusedByField) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::WorkerService::NewStub(channel);
  for (auto [field, mutate] :
       std::vector<std::pair<std::string, std::function<void(v1::RegisterWorker*)>>>{
           {"worker_id", [](auto* r) { r->set_worker_id("bad id/"); }},
           // An id dytctl could not name: `dytctl workers drain -w1` reads an option.
           {"worker_id", [](auto* r) { r->set_worker_id("-w1"); }},
           {"slot_kind", [](auto* r) { r->set_slot_kind("tpu"); }},
           {"slots", [](auto* r) { r->set_slots(0); }},
           // Logged and shown in tables: no forged log lines, no terminal escapes.
           {"hostname", [](auto* r) { r->set_hostname("h\nE dyt-scheduler FORGED"); }},
           {"device_name", [](auto* r) { r->set_device_name("GPU \x1b]0;pwned\x07"); }}}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Connect(&context);
    v1::WorkerMessage hello;
    v1::RegisterWorker* r = hello.mutable_register_();
    r->set_worker_id("ok");
    r->set_slot_kind("cpu");
    r->set_slots(1);
    mutate(r);
    stream->Write(hello);
    stream->WritesDone();
    v1::SchedulerMessage m;
    while (stream->Read(&m)) {
    }
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_EQ(status.error_message().rfind(field + ":", 0), 0u) << status.error_message();
  }
}

}  // namespace
}  // namespace dyt
