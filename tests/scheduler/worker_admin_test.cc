// DrainWorker and RemoveWorker over a real gRPC server, RocksDB store and worker sessions:
// a drained worker gets no new work (kept across scheduler and worker restarts), its jobs run
// on or, with preempt, move elsewhere; a worker that is gone can be forgotten.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/scheduler/service_test_util.h"
#include "tests/scheduler/test_util.h"
#include "tests/scheduler/test_worker.h"

namespace dyt {
namespace {

using std::chrono::milliseconds;
using testing::Context;
using testing::GetJob;
using testing::OpenStore;
using testing::RanksSpec;
using testing::StatesOf;
using testing::SubmitJob;
using testing::TempDir;
using testing::TestServer;
using testing::TestWorker;
using testing::WaitJob;
using testing::WaitState;

grpc::Status Drain(TestServer& server, const std::string& worker_id, bool drain,
                   const std::string& reason = "", bool preempt = false,
                   v1::WorkerStatus* out = nullptr) {
  v1::DrainWorkerRequest request;
  request.set_worker_id(worker_id);
  request.set_drain(drain);
  request.set_reason(reason);
  request.set_preempt(preempt);
  v1::WorkerStatus response;
  grpc::Status status = server.stub().DrainWorker(Context().get(), request, &response);
  if (out != nullptr) *out = response;
  return status;
}

grpc::Status Remove(TestServer& server, const std::string& worker_id) {
  v1::RemoveWorkerRequest request;
  request.set_worker_id(worker_id);
  v1::RemoveWorkerResponse response;
  return server.stub().RemoveWorker(Context().get(), request, &response);
}

std::optional<v1::WorkerStatus> Listed(TestServer& server, const std::string& worker_id) {
  v1::ListWorkersResponse response;
  grpc::Status status =
      server.stub().ListWorkers(Context().get(), v1::ListWorkersRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  for (const auto& w : response.workers()) {
    if (w.id() == worker_id) return w;
  }
  return std::nullopt;
}

// Waits (10 s at most) until the worker has registered and is connected: registration runs on
// the worker's stream, after its constructor returned.
bool WaitConnected(TestServer& server, const std::string& worker_id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::optional<v1::WorkerStatus> w = Listed(server, worker_id);
    if (w && w->connected()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

// The value of metric `name` (a gauge or counter without labels) in the scheduler's registry.
double Counter(TestServer& server, const std::string& name) {
  for (const auto& family : server.metrics().registry()->Collect()) {
    if (family.name == name && !family.metric.empty()) return family.metric[0].counter.value;
  }
  ADD_FAILURE() << "no " << name;
  return -1;
}

// dyt_scheduler_workers_draining as the scheduler's registry has it.
double DrainingGauge(TestServer& server) {
  for (const auto& family : server.metrics().registry()->Collect()) {
    if (family.name == "dyt_scheduler_workers_draining" && !family.metric.empty()) {
      return family.metric[0].gauge.value;
    }
  }
  ADD_FAILURE() << "no dyt_scheduler_workers_draining";
  return -1;
}

// dyt_scheduler_workers{state=`state`}.
double WorkersGauge(TestServer& server, const std::string& state) {
  for (const auto& family : server.metrics().registry()->Collect()) {
    if (family.name != "dyt_scheduler_workers") continue;
    for (const auto& m : family.metric) {
      if (m.label.size() == 1 && m.label[0].value == state) return m.gauge.value;
    }
  }
  ADD_FAILURE() << "no dyt_scheduler_workers{state=" << state << "}";
  return -1;
}

// dyt_scheduler_slots{kind="cpu", state=`state`}.
double CpuSlotsGauge(TestServer& server, const std::string& state) {
  for (const auto& family : server.metrics().registry()->Collect()) {
    if (family.name != "dyt_scheduler_slots") continue;
    for (const auto& m : family.metric) {
      bool cpu = false, match = false;
      for (const auto& l : m.label) {
        cpu = cpu || (l.name == "kind" && l.value == "cpu");
        match = match || (l.name == "state" && l.value == state);
      }
      if (cpu && match) return m.gauge.value;
    }
  }
  ADD_FAILURE() << "no dyt_scheduler_slots{kind=cpu,state=" << state << "}";
  return -1;
}

TEST(WorkerAdminTest, ADrainedWorkerGetsNoNewWorkAndItsJobRunsOn) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 2);
  const std::string running = SubmitJob(server, RanksSpec("running", 1));
  auto a = w1.TakeAssignment(running);
  ASSERT_TRUE(a);
  w1.StartAll(*a);
  ASSERT_TRUE(WaitState(server, running, v1::RUNNING));

  v1::WorkerStatus drained;
  grpc::Status s = Drain(server, "w1", true, "new disks", false, &drained);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(drained.draining());
  EXPECT_EQ(drained.drain_reason(), "new disks");
  EXPECT_GT(drained.drain_since().seconds(), 0);
  EXPECT_EQ(std::vector<std::string>(drained.job_ids().begin(), drained.job_ids().end()),
            std::vector<std::string>{running});
  // Its free slot takes no new job; the running one is not stopped.
  const std::string waiting = SubmitJob(server, RanksSpec("waiting", 1));
  EXPECT_FALSE(w1.TakeAssignment(waiting, milliseconds(800)));
  EXPECT_FALSE(w1.TakeStop(running, milliseconds(100)));
  EXPECT_EQ(GetJob(server, waiting).state(), v1::QUEUED);
  EXPECT_EQ(DrainingGauge(server), 1);
  // Still connected, so its slots count: 1 of 2 allocated (it read 1 of 0 while drained).
  EXPECT_EQ(CpuSlotsGauge(server, "total"), 2);
  EXPECT_EQ(CpuSlotsGauge(server, "allocated"), 1);

  // Another worker takes it.
  TestWorker w2(server.port(), "w2", 1);
  auto b = w2.TakeAssignment(waiting);
  ASSERT_TRUE(b);

  // Undrained, w1 takes work again.
  ASSERT_TRUE(Drain(server, "w1", false, "", false, &drained).ok());
  EXPECT_FALSE(drained.draining());
  EXPECT_EQ(drained.drain_reason(), "");
  EXPECT_EQ(drained.drain_since().seconds(), 0);
  EXPECT_EQ(DrainingGauge(server), 0);
  const std::string third = SubmitJob(server, RanksSpec("third", 1));
  EXPECT_TRUE(w1.TakeAssignment(third));
}

TEST(WorkerAdminTest, DrainWithPreemptMovesItsJobsElsewhereWithoutARestart) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 1);
  const std::string id = SubmitJob(server, RanksSpec("moved", 1, 0, /*max_restarts=*/0));
  auto a = w1.TakeAssignment(id);
  ASSERT_TRUE(a);
  w1.StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  TestWorker w2(server.port(), "w2", 1);

  ASSERT_TRUE(Drain(server, "w1", true, "kernel upgrade", /*preempt=*/true).ok());
  auto stop = w1.TakeStop(id);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason(), v1::StopJob::PREEMPT);
  EXPECT_EQ(GetJob(server, id).reason(), "worker w1 is draining: kernel upgrade");
  // The trainer checkpoints and exits; the job resumes on w2 as attempt 2, no restart spent.
  w1.ExitAll(*a, v1::RankUpdate::STOPPED);
  auto b = w2.TakeAssignment(id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->attempt(), 2);
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.restarts(), 0);
  auto states = StatesOf(job);
  EXPECT_NE(std::find(states.begin(), states.end(), v1::PREEMPTED), states.end());
  bool said_why = false;
  for (const auto& e : job.events()) {
    said_why |= e.state() == v1::PREEMPTED &&
                e.reason() == "preempted: worker w1 is draining: kernel upgrade";
  }
  EXPECT_TRUE(said_why) << job.DebugString();
  // w1 stays out of the placement even with its slot free.
  EXPECT_FALSE(w1.TakeAssignment(id, milliseconds(300)));
}

TEST(WorkerAdminTest, ADrainOutlivesSchedulerAndWorkerRestarts) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  {
    TestServer server(store.get());
    TestWorker w1(server.port(), "w1", 1);
    ASSERT_TRUE(WaitConnected(server, "w1"));
    ASSERT_TRUE(Drain(server, "w1", true, "bad fan").ok());
  }
  TestServer server(store.get());
  std::optional<v1::WorkerStatus> listed = Listed(server, "w1");
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->draining());
  EXPECT_EQ(listed->drain_reason(), "bad fan");
  EXPECT_EQ(DrainingGauge(server), 1);
  // The worker reconnects (its own restart): still drained.
  TestWorker w1(server.port(), "w1", 1);
  const std::string id = SubmitJob(server, RanksSpec("second", 1));
  EXPECT_FALSE(w1.TakeAssignment(id, milliseconds(800)));
  listed = Listed(server, "w1");
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->connected());
  EXPECT_TRUE(listed->draining());
  EXPECT_EQ(GetJob(server, id).state(), v1::QUEUED);
}

TEST(WorkerAdminTest, OnlyAWorkerThatIsGoneAndRunsNothingIsRemoved) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.heartbeat_timeout = milliseconds(600);
  TestServer server(store.get(), {}, options);
  auto w1 = std::make_unique<TestWorker>(server.port(), "w1", 1);
  const std::string id = SubmitJob(server, RanksSpec("on-w1", 1, 0, /*max_restarts=*/1));
  auto a = w1->TakeAssignment(id);
  ASSERT_TRUE(a);
  w1->StartAll(*a);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));

  grpc::Status s = Remove(server, "w1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(),
            "worker w1 is connected; stop its dyt-worker first (drain it to move its jobs away)");
  s = Remove(server, "nope");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "worker nope: not found");

  // Gone: once its ranks count as lost (the heartbeat timeout), it can be forgotten.
  w1->StopHeartbeats();
  w1.reset();
  ASSERT_TRUE(WaitJob(
      server, id, [](const v1::Job& j) { return j.restarts() == 1 && j.state() == v1::QUEUED; }));
  s = Remove(server, "w1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(Listed(server, "w1"));
  // Forgotten durably: a restarted scheduler does not list it either.
  server.Stop();
  TestServer again(store.get(), {}, options);
  EXPECT_FALSE(Listed(again, "w1"));
}

// A worker that says it is shutting down (SIGTERM) gets no new work and its jobs are preempted:
// the ranks on its peers are stopped too, and a peer rank that stopped on its own (exit 3 after
// a checkpoint, reported FAILED by its worker, which did not ask) is no failure either.
TEST(WorkerAdminTest, AWorkerShuttingDownPreemptsItsJobs) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 1);
  TestWorker w2(server.port(), "w2", 1);
  const std::string id = SubmitJob(server, RanksSpec("spread", 2, 0, /*max_restarts=*/0));
  auto a1 = w1.TakeAssignment(id);
  auto a2 = w2.TakeAssignment(id);
  ASSERT_TRUE(a1 && a2);
  w1.StartAll(*a1);
  w2.StartAll(*a2);
  ASSERT_TRUE(WaitState(server, id, v1::RUNNING));

  v1::WorkerMessage leaving;
  leaving.mutable_shutting_down()->set_reason("received signal 15");
  ASSERT_TRUE(w1.Send(leaving));
  auto stop = w2.TakeStop(id);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason(), v1::StopJob::PREEMPT);
  EXPECT_EQ(GetJob(server, id).reason(), "worker w1 shut down (received signal 15)");
  w1.ExitAll(*a1, v1::RankUpdate::STOPPED);
  for (const auto& r : a2->ranks()) {
    w2.Exited(id, 1, r.rank(), v1::RankUpdate::FAILED, "exited with code 3", "", /*exit_code=*/3);
  }
  ASSERT_TRUE(WaitState(server, id, v1::QUEUED));
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.restarts(), 0);
  bool preempted = false;
  for (const auto& e : job.events()) {
    preempted |= e.state() == v1::PREEMPTED &&
                 e.reason() == "preempted: worker w1 shut down (received signal 15)";
  }
  EXPECT_TRUE(preempted) << job.DebugString();
  // w1 takes nothing until it registers again; the 2-rank job waits for two workers.
  const std::string one = SubmitJob(server, RanksSpec("one-rank", 1));
  EXPECT_FALSE(w1.TakeAssignment(one, milliseconds(500)));
}

// A worker that said it is shutting down takes no work: not when an operator undrains it, not
// when it reconnects while its trainers stop (its registration says so again), and its end
// is no lost worker.
TEST(WorkerAdminTest, AWorkerShuttingDownTakesNoWorkEvenUndrainedOrReconnected) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.heartbeat_timeout = milliseconds(600);
  TestServer server(store.get(), {}, options);
  auto w1 = std::make_unique<TestWorker>(server.port(), "w1", 1);
  ASSERT_TRUE(WaitConnected(server, "w1"));
  v1::WorkerMessage leaving;
  leaving.mutable_shutting_down()->set_reason("received signal 15");
  ASSERT_TRUE(w1->Send(leaving));
  std::this_thread::sleep_for(milliseconds(300));  // the message is handled before the undrain
  ASSERT_TRUE(Drain(server, "w1", false).ok());    // undrain: still shutting down
  const std::string id = SubmitJob(server, RanksSpec("waits", 1));
  EXPECT_FALSE(w1->TakeAssignment(id, milliseconds(600)));
  // Its session breaks and it reconnects, still stopping its trainers.
  w1.reset();
  TestWorker again(server.port(), "w1", 1, "cpu", {}, /*shutting_down=*/true);
  EXPECT_FALSE(again.TakeAssignment(id, milliseconds(600)));
  again.StopHeartbeats();
  // Gone as it said: no lost worker counted, and shut down rather than disconnected (a planned
  // stop paged DytWorkerDisconnected until someone removed the worker).
  std::this_thread::sleep_for(milliseconds(1200));
  EXPECT_EQ(Counter(server, "dyt_scheduler_workers_lost_total"), 0);
  server.scheduler().RunPassForTest();
  EXPECT_EQ(WorkersGauge(server, "shut_down"), 1);
  EXPECT_EQ(WorkersGauge(server, "disconnected"), 0);
  EXPECT_EQ(WorkersGauge(server, "connected"), 0);
}

// A planned stop stays one across a scheduler restart (shut_down, not disconnected, so no page),
// until the worker registers again as a fresh process.
TEST(WorkerAdminTest, AShutDownWorkerStaysShutDownAcrossASchedulerRestart) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  {
    TestServer server(store.get());
    TestWorker w1(server.port(), "w1", 1);
    ASSERT_TRUE(WaitConnected(server, "w1"));
    v1::WorkerMessage leaving;
    leaving.mutable_shutting_down()->set_reason("received signal 15");
    ASSERT_TRUE(w1.Send(leaving));
    std::this_thread::sleep_for(milliseconds(300));  // handled before the scheduler stops
  }
  TestServer server(store.get());
  server.scheduler().RunPassForTest();
  EXPECT_EQ(WorkersGauge(server, "shut_down"), 1);
  EXPECT_EQ(WorkersGauge(server, "disconnected"), 0);
  TestWorker again(server.port(), "w1", 1);
  ASSERT_TRUE(WaitConnected(server, "w1"));
  server.scheduler().RunPassForTest();
  EXPECT_EQ(WorkersGauge(server, "shut_down"), 0);
  EXPECT_EQ(WorkersGauge(server, "connected"), 1);
}

// A stop asked for a preemption is still one after a scheduler restart: the job is requeued
// with no restart counted (the flag was in memory only; a restart made it a failure), and its
// event names the preemption (a RUNNING event in between used to become its reason).
TEST(WorkerAdminTest, APreemptionOutlivesASchedulerRestart) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  std::string id;
  {
    TestServer server(store.get());
    TestWorker w1(server.port(), "w1", 1);
    id = SubmitJob(server, RanksSpec("moved", 1, 0, /*max_restarts=*/0));
    auto a = w1.TakeAssignment(id);
    ASSERT_TRUE(a);
    ASSERT_TRUE(Drain(server, "w1", true, "disk", /*preempt=*/true).ok());
    ASSERT_TRUE(w1.TakeStop(id));
    w1.StartAll(*a);  // it had been starting: RUNNING while it stops
    ASSERT_TRUE(WaitState(server, id, v1::RUNNING));
  }
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 1, "cpu", {testing::Running(id, 1, 0)});
  ASSERT_TRUE(WaitConnected(server, "w1"));
  w1.Exited(id, 1, 0, v1::RankUpdate::STOPPED);
  ASSERT_TRUE(WaitState(server, id, v1::QUEUED));
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.restarts(), 0);
  bool preempted = false;
  for (const auto& e : job.events()) {
    preempted |=
        e.state() == v1::PREEMPTED && e.reason() == "preempted: worker w1 is draining: disk";
  }
  EXPECT_TRUE(preempted) << job.DebugString();
}

// Drained with --preempt while its assignment was lost (the worker never started it): when the
// worker comes back without it, the job is requeued as preempted instead of being started on
// the drained worker.
TEST(WorkerAdminTest, APreemptedJobThatNeverStartedIsRequeuedWhenItsWorkerReturns) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  auto w1 = std::make_unique<TestWorker>(server.port(), "w1", 1);
  const std::string id = SubmitJob(server, RanksSpec("never", 1, 0, /*max_restarts=*/0));
  ASSERT_TRUE(w1->TakeAssignment(id));
  ASSERT_TRUE(Drain(server, "w1", true, "", /*preempt=*/true).ok());
  w1.reset();  // its process died with the assignment
  TestWorker back(server.port(), "w1", 1);
  ASSERT_TRUE(WaitState(server, id, v1::QUEUED));
  EXPECT_FALSE(back.TakeAssignment(id, milliseconds(500)));
  EXPECT_EQ(GetJob(server, id).restarts(), 0);
}

TEST(WorkerAdminTest, BadRequestsNameTheField) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  TestWorker w1(server.port(), "w1", 1);
  ASSERT_TRUE(WaitState(server, SubmitJob(server, RanksSpec("x", 1)), v1::SCHEDULED));
  const struct {
    std::string worker_id;
    bool drain;
    std::string reason;
    bool preempt;
    grpc::StatusCode code;
    std::string message;
  } cases[] = {
      {"", true, "", false, grpc::StatusCode::INVALID_ARGUMENT, "worker_id: required"},
      {"w9", true, "", false, grpc::StatusCode::NOT_FOUND, "worker w9: not found"},
      {"w1", false, "", true, grpc::StatusCode::INVALID_ARGUMENT,
       "preempt: only with drain (jobs are moved off a worker being drained)"},
      {"w1", false, "why", false, grpc::StatusCode::INVALID_ARGUMENT, "reason: only with drain"},
      {"w1", true, std::string(1025, 'r'), false, grpc::StatusCode::INVALID_ARGUMENT,
       "reason: at most 1024 bytes (got 1025)"},
      {"w1", true, "two\nlines", false, grpc::StatusCode::INVALID_ARGUMENT,
       "reason: one line of text, without control characters"},
      {"w1", true, "red \x1b[31m", false, grpc::StatusCode::INVALID_ARGUMENT,
       "reason: one line of text, without control characters"},
  };
  for (const auto& c : cases) {
    grpc::Status s = Drain(server, c.worker_id, c.drain, c.reason, c.preempt);
    EXPECT_EQ(s.error_code(), c.code) << c.message;
    EXPECT_EQ(s.error_message(), c.message);
  }
  // Nothing was changed by the refused requests.
  std::optional<v1::WorkerStatus> listed = Listed(server, "w1");
  ASSERT_TRUE(listed);
  EXPECT_FALSE(listed->draining());
}

}  // namespace
}  // namespace dyt
