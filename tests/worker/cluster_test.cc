// dyt-scheduler and dyt-worker daemons as real processes on loopback, with real dyt-train
// trainers: jobs submitted over gRPC train across workers (Gloo over the scheduler
// rendezvous), are cancelled, survive a worker's death and a scheduler restart, and fail with
// their output tail. After each job ends, no process of it is left. With CUDA in the build, a
// GPU job also goes through: a worker whose GPUs and trainer run on the host emulation of
// tests/cuda/emu (dyt-worker-emu, dyt-train-emu), since this machine has no GPU.
#include <arpa/inet.h>
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

#include "dyt/v1/job_service.grpc.pb.h"
#include "tests/common/net.h"
#include "tests/dist/subprocess.h"

namespace dyt::worker {
namespace {

using ::dyt::testing::Eventually;
using ::dyt::testing::FreePort;
using ::dyt::testing::WaitForPort;

using dist::testing::ReadFile;
using dist::testing::Spawn;
using dist::testing::WaitFor;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Live (not zombie) processes whose command line has "--job-id <job_id>": the job's trainers.
// Processes of this test's job `job_id`: the trainer's command line names the job and a file
// under `scope` (the test's temp dir), so other tests' trainers on the machine do not count.
std::vector<int> JobProcesses(const std::string& job_id, const std::string& scope) {
  std::vector<int> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  const std::string needle = std::string("--job-id") + '\0' + job_id + '\0';
  while (dirent* e = ::readdir(proc)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    const auto cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    if (!cmd || cmd->find(needle) == std::string::npos || cmd->find(scope) == std::string::npos) {
      continue;
    }
    const auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    if (stat && stat->find(") Z ") != std::string::npos) continue;
    out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

class ClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (pid_t pid : workers_) {
      if (pid > 0) {
        ::kill(pid, SIGTERM);
        WaitFor(pid, seconds(15));
      }
    }
    if (scheduler_ > 0) {
      ::kill(scheduler_, SIGTERM);
      WaitFor(scheduler_, seconds(10));
    }
  }

  void StartScheduler() {
    if (port_ == 0) port_ = FreePort();
    ASSERT_GT(port_, 0);
    address_ = "127.0.0.1:" + std::to_string(port_);
    scheduler_ = Spawn(
        {DYT_SCHEDULER_BINARY, "--listen", address_, "--data-dir", dir_.Join("state"),
         "--artifact-root", dir_.Join("artifacts"), "--heartbeat-interval-s", "0.3",
         "--heartbeat-timeout-s", "3", "--stop-grace-s", "5", "--log-level", "info", "--insecure"},
        {}, dir_.Join("scheduler." + std::to_string(++scheduler_starts_) + ".log"));
    ASSERT_GT(scheduler_, 0);
    ASSERT_TRUE(WaitForPort(port_, seconds(20))) << Log("scheduler.1.log");
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
  }

  pid_t StartWorker(const std::string& id) {
    const pid_t pid = Spawn({DYT_WORKER_BINARY, "--scheduler", address_, "--worker-id", id,
                             "--cpu-slots", "1", "--work-dir", dir_.Join("work-" + id), "--trainer",
                             DYT_TRAIN_BINARY, "--orphan-timeout-s", "30", "--stop-grace-s", "5"},
                            {"OMP_NUM_THREADS=1"}, dir_.Join(id + ".log"));
    workers_.push_back(pid);
    return pid;
  }

  bool WaitForWorkers(int n) {
    return Eventually(
        [&] {
          grpc::ClientContext ctx;
          v1::ListWorkersRequest req;
          v1::ListWorkersResponse resp;
          if (!jobs_->ListWorkers(&ctx, req, &resp).ok()) return false;
          return resp.workers_size() >= n;
        },
        seconds(20));
  }

  v1::JobSpec Spec(int ranks, int64_t steps, int every_steps = 0) {
    v1::JobSpec s;
    s.set_name("cluster-test");
    s.set_owner("tester");
    s.mutable_model()->set_preset("test");
    s.mutable_data()->set_synthetic(true);
    s.mutable_train()->set_steps(steps);
    s.mutable_train()->set_batch_size(2);
    s.mutable_train()->set_log_every(1);
    s.mutable_resources()->set_ranks(ranks);
    s.mutable_resources()->set_slots_per_rank(1);
    s.mutable_resources()->set_kind("cpu");
    s.mutable_checkpoint()->set_every_steps(every_steps);
    s.set_max_restarts(3);
    return s;
  }

  std::string Submit(const v1::JobSpec& spec) {
    grpc::ClientContext ctx;
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    v1::SubmitJobResponse resp;
    const grpc::Status s = jobs_->SubmitJob(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.job().id();
  }

  v1::Job Get(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(5));
    v1::GetJobRequest req;
    req.set_id(id);
    v1::Job job;
    jobs_->GetJob(&ctx, req, &job);
    return job;
  }

  // Polls until `done(job)`; returns the last job read.
  v1::Job WaitJob(const std::string& id, const std::function<bool(const v1::Job&)>& done,
                  milliseconds timeout) {
    v1::Job job;
    Eventually(
        [&] {
          job = Get(id);
          return done(job);
        },
        timeout);
    return job;
  }

  static bool Terminal(const v1::Job& j) {
    return j.state() == v1::SUCCEEDED || j.state() == v1::FAILED || j.state() == v1::CANCELLED;
  }

  std::string Log(const std::string& name) { return ReadFile(dir_.Join(name)).value_or(""); }
  std::string Logs() {
    std::string out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      if (e.path().extension() == ".log") {
        std::string text = ReadFile(e.path().string()).value_or("");
        if (text.size() > 4000) text = text.substr(text.size() - 4000);
        out += "--- " + e.path().filename().string() + "\n" + text;
      }
    }
    return out;
  }

  testing::TempDir dir_;
  int port_ = 0;
  int scheduler_starts_ = 0;
  std::string address_;
  pid_t scheduler_ = -1;
  std::vector<pid_t> workers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
};

TEST_F(ClusterTest, ATwoRankJobSpreadOverTwoWorkersTrainsToCompletion) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  StartWorker("w1");
  StartWorker("w2");
  ASSERT_TRUE(WaitForWorkers(2)) << Logs();
  const std::string id = Submit(Spec(2, 6));
  const v1::Job job = WaitJob(id, Terminal, seconds(60));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.reason() << "\n" << Logs();
  EXPECT_EQ(job.progress().step(), 6);
  EXPECT_EQ(job.last_checkpoint_step(), 6);
  // Each worker ran one rank.
  EXPECT_TRUE(std::filesystem::exists(dir_.Join("work-w1/jobs/" + id)));
  EXPECT_TRUE(std::filesystem::exists(dir_.Join("work-w2/jobs/" + id)));
  EXPECT_TRUE(Eventually([&] { return JobProcesses(id, dir_.path()).empty(); }, seconds(5)));
}

TEST_F(ClusterTest, CancelStopsEveryProcessOfTheJobWithinTheGrace) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  StartWorker("w1");
  StartWorker("w2");
  ASSERT_TRUE(WaitForWorkers(2)) << Logs();
  const std::string id = Submit(Spec(2, 1000000));
  const v1::Job running = WaitJob(
      id, [](const v1::Job& j) { return j.progress().step() >= 2 || Terminal(j); }, seconds(60));
  ASSERT_EQ(running.state(), v1::RUNNING) << running.reason() << "\n" << Logs();
  ASSERT_EQ(JobProcesses(id, dir_.path()).size(), 2u);
  grpc::ClientContext ctx;
  v1::CancelJobRequest req;
  req.set_id(id);
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->CancelJob(&ctx, req, &cancelled).ok());
  const auto start = Clock::now();
  // The scheduler's stop grace is 5 s.
  EXPECT_TRUE(Eventually([&] { return JobProcesses(id, dir_.path()).empty(); }, seconds(5 + 5)))
      << Logs();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 10.0);
  const v1::Job after = WaitJob(id, Terminal, seconds(20));
  EXPECT_EQ(after.state(), v1::CANCELLED) << after.reason();
}

TEST_F(ClusterTest, AKilledWorkersJobFinishesOnTheOtherFromItsLastCheckpoint) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  StartWorker("w1");
  StartWorker("w2");
  ASSERT_TRUE(WaitForWorkers(2)) << Logs();
  const std::string id = Submit(Spec(1, 60, 5));
  const v1::Job job = WaitJob(
      id, [](const v1::Job& j) { return j.last_checkpoint_step() >= 5 || Terminal(j); },
      seconds(60));
  ASSERT_EQ(job.state(), v1::RUNNING) << job.reason() << "\n" << Logs();
  ASSERT_EQ(job.placement_size(), 1);
  const std::string victim = job.placement(0).worker_id();
  const size_t index = victim == "w1" ? 0 : 1;
  ::kill(workers_[index], SIGKILL);
  WaitFor(workers_[index], seconds(5));
  workers_[index] = -1;
  const v1::Job done = WaitJob(id, Terminal, seconds(60));
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.reason() << "\n" << Logs();
  EXPECT_GE(done.attempt(), 2);
  const std::string other = victim == "w1" ? "w2" : "w1";
  EXPECT_TRUE(std::filesystem::exists(dir_.Join("work-" + other + "/jobs/" + id)));
  // The second attempt resumed (its trainer said so in its output) rather than starting over.
  EXPECT_NE(Log(other + ".log").find(id), std::string::npos);
  EXPECT_TRUE(Eventually([&] { return JobProcesses(id, dir_.path()).empty(); }, seconds(5)));
}

// A job that reached its end (or its time limit) goes on as a new job from its checkpoint:
// init_from_job, resolved by the scheduler, written as checkpoint.init_from by the worker,
// resumed by the real trainer.
TEST_F(ClusterTest, ANewJobGoesOnFromAnEarlierJobsCheckpoint) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << Logs();
  const std::string first = Submit(Spec(1, 8, 4));
  ASSERT_EQ(WaitJob(first, Terminal, seconds(60)).state(), v1::SUCCEEDED) << Logs();
  v1::JobSpec more = Spec(1, 12, 4);
  more.set_init_from_job(first);
  const std::string second = Submit(more);
  const v1::Job done = WaitJob(second, Terminal, seconds(60));
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.reason() << "\n" << Logs();
  EXPECT_EQ(done.spec().init_from_step(), 8);
  EXPECT_EQ(done.last_checkpoint_step(), 12);
  const std::string rank0 =
      ReadFile(dir_.Join("work-w1/jobs/" + second + "/attempt-1/rank-0.log")).value_or("");
  EXPECT_NE(rank0.find("resumed from " + dir_.Join("artifacts/" + first + "/step-00000008") +
                       " at step 8"),
            std::string::npos)
      << rank0;
  EXPECT_EQ(rank0.find("step 1/12"), std::string::npos) << rank0;  // not from the start
}

// `systemctl stop dyt-worker` (SIGTERM) under a two-rank job spread over two workers: the worker
// says it is shutting down before it stops its trainer, so the job is preempted, not failed
// (max_restarts 0 would fail it): both ranks stop with a checkpoint, the job is requeued with no
// restart counted, and once the worker is back it resumes from that checkpoint and finishes.
TEST_F(ClusterTest, AWorkerStoppedWithSigtermPreemptsItsJobInsteadOfFailingIt) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  StartWorker("w1");
  StartWorker("w2");
  ASSERT_TRUE(WaitForWorkers(2)) << Logs();
  v1::JobSpec spec = Spec(2, 400);
  spec.set_max_restarts(0);
  const std::string id = Submit(spec);
  const v1::Job running = WaitJob(
      id, [](const v1::Job& j) { return j.progress().step() >= 3 || Terminal(j); }, seconds(60));
  ASSERT_EQ(running.state(), v1::RUNNING) << running.reason() << "\n" << Logs();
  ::kill(workers_[0], SIGTERM);
  const dist::testing::ExitInfo stopped = WaitFor(workers_[0], seconds(30));
  workers_[0] = -1;
  ASSERT_TRUE(stopped.exited && stopped.code == 0) << Logs();
  const v1::Job requeued = WaitJob(
      id, [](const v1::Job& j) { return j.state() == v1::QUEUED || Terminal(j); }, seconds(30));
  ASSERT_EQ(requeued.state(), v1::QUEUED) << requeued.reason() << "\n" << Logs();
  EXPECT_EQ(requeued.restarts(), 0);
  EXPECT_GE(requeued.last_checkpoint_step(), running.progress().step());
  bool preempted = false;
  for (const auto& e : requeued.events()) {
    preempted |= e.state() == v1::PREEMPTED &&
                 e.reason() == "preempted: worker w1 shut down (received signal 15)";
  }
  EXPECT_TRUE(preempted) << requeued.DebugString();
  // w1 comes back: the job resumes from the checkpoint (attempt 2) and finishes.
  StartWorker("w1");
  const v1::Job done = WaitJob(id, Terminal, seconds(120));
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.reason() << "\n" << Logs();
  EXPECT_EQ(done.attempt(), 2);
  EXPECT_EQ(done.restarts(), 0);
  // Rank 0 of attempt 2 (on either worker) resumed rather than starting over.
  std::string rank0;
  for (const char* w : {"w1", "w2"}) {
    rank0 += ReadFile(dir_.Join(std::string("work-") + w + "/jobs/" + id + "/attempt-2/rank-0.log"))
                 .value_or("");
  }
  EXPECT_NE(rank0.find("resumed from"), std::string::npos) << Logs();
  // What the worker and its trainers wrote is not for every local user (umask 027).
  for (const char* w : {"w1", "w2"}) {
    const std::string log =
        dir_.Join(std::string("work-") + w + "/jobs/" + id + "/attempt-2/rank-0.log");
    struct stat st {};
    if (::stat(log.c_str(), &st) == 0) {
      EXPECT_EQ(st.st_mode & 007, 0u) << log;
    }
  }
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir_.Join("artifacts/" + id))) {
    struct stat st {};
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 007, 0u) << entry.path();
  }
}

// A trainer whose worker dies checkpoints on the SIGTERM that follows (PR_SET_PDEATHSIG), with
// no worker left to report it. The scheduler still finds that checkpoint in the job's artifact
// directory: `get` counts it in last_checkpoint_step, `checkpoints` lists it.
TEST_F(ClusterTest, TheCheckpointATrainerSavesAfterItsWorkerDiedIsListed) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  const pid_t worker = StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << Logs();
  const std::string id = Submit(Spec(1, 1000000));  // no periodic checkpoints
  const v1::Job running = WaitJob(
      id, [](const v1::Job& j) { return j.progress().step() >= 3 || Terminal(j); }, seconds(60));
  ASSERT_EQ(running.state(), v1::RUNNING) << running.reason() << "\n" << Logs();
  ASSERT_EQ(running.last_checkpoint_step(), 0);
  ::kill(worker, SIGKILL);
  WaitFor(worker, seconds(5));
  workers_.clear();
  ASSERT_TRUE(Eventually([&] { return JobProcesses(id, dir_.path()).empty(); }, seconds(30)))
      << Logs();
  // `get` counts it once the job is requeued (its worker lost), before anyone lists checkpoints.
  ASSERT_TRUE(Eventually(
      [&] { return Get(id).last_checkpoint_step() >= running.progress().step(); }, seconds(20)))
      << Logs();
  v1::CheckpointRecord found;
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext ctx;
        v1::ListCheckpointsRequest req;
        req.set_job_id(id);
        v1::ListCheckpointsResponse resp;
        if (!jobs_->ListCheckpoints(&ctx, req, &resp).ok() || resp.checkpoints_size() != 1) {
          return false;
        }
        found = resp.checkpoints(0);
        return true;
      },
      seconds(10)))
      << Logs();
  EXPECT_GE(found.step(), running.progress().step());
  EXPECT_EQ(found.attempt(), 1);
  EXPECT_GT(found.loss(), 0);
  EXPECT_GE(found.files_size(), 3);
  EXPECT_TRUE(std::filesystem::exists(found.path() + "/manifest.json")) << found.path();
  EXPECT_EQ(Get(id).last_checkpoint_step(), found.step());
  EXPECT_NE(Log("scheduler.1.log").find("which no worker reported"), std::string::npos);
}

TEST_F(ClusterTest, AFailingTrainerIsReportedFailedWithItsOutputAfterMaxRestarts) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << Logs();
  // A shard missing on the worker: the trainer fails (exit 1) and the job is retried, since
  // the file may yet appear (a mount); FAILED once max_restarts is spent.
  const std::string missing = dir_.Join("not-there.bin");
  v1::JobSpec spec = Spec(1, 5);
  spec.mutable_data()->set_synthetic(false);
  spec.mutable_data()->add_train_paths(missing);
  spec.set_max_restarts(1);
  const std::string id = Submit(spec);
  const v1::Job job = WaitJob(id, Terminal, seconds(60));
  ASSERT_EQ(job.state(), v1::FAILED) << job.reason() << "\n" << Logs();
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_NE(job.reason().find("exited with code 1"), std::string::npos) << job.reason();
  EXPECT_NE(job.reason().find("not-there.bin"), std::string::npos) << job.reason();
  EXPECT_NE(job.reason().find("max_restarts 1 reached"), std::string::npos) << job.reason();
  EXPECT_TRUE(Eventually([&] { return JobProcesses(id, dir_.path()).empty(); }, seconds(5)));

  // A shard that exists but is garbage: the trainer refuses it as invalid input (exit 2), which
  // the next attempt would too: FAILED at once, no restart spent.
  const std::string shard = dir_.Join("garbage.bin");
  {
    std::ofstream out(shard);
    out << "this is not a token shard";
  }
  v1::JobSpec garbage = Spec(1, 5);
  garbage.mutable_data()->set_synthetic(false);
  garbage.mutable_data()->add_train_paths(shard);
  garbage.set_max_restarts(1);
  const std::string bad = Submit(garbage);
  const v1::Job refused = WaitJob(bad, Terminal, seconds(60));
  ASSERT_EQ(refused.state(), v1::FAILED) << refused.reason() << "\n" << Logs();
  EXPECT_EQ(refused.attempt(), 1);
  EXPECT_EQ(refused.restarts(), 0);
  EXPECT_NE(refused.reason().find("exited with code 2"), std::string::npos) << refused.reason();
  EXPECT_NE(refused.reason().find("garbage.bin"), std::string::npos) << refused.reason();
  EXPECT_NE(refused.reason().find("configuration error: not retried"), std::string::npos)
      << refused.reason();
}

#ifdef DYT_WORKER_EMU_BINARY
// A GPU job end to end: dytctl's JobSpec with kind gpu and recompute, the scheduler's GPU
// placement, a worker offering its (emulated) GPUs, the trainer on train.device cuda with the
// CUDA backend (its host code on the emulated runtime and kernels), progress and checkpoints
// reported back.
TEST_F(ClusterTest, AGpuJobTrainsOnAGpuWorkerWithTheCudaBackend) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  const pid_t worker = Spawn({DYT_WORKER_EMU_BINARY, "--scheduler", address_, "--worker-id", "g1",
                              "--work-dir", dir_.Join("work-g1"), "--trainer", DYT_TRAIN_EMU_BINARY,
                              "--orphan-timeout-s", "30", "--stop-grace-s", "5"},
                             {"OMP_NUM_THREADS=1"}, dir_.Join("g1.log"));
  workers_.push_back(worker);
  ASSERT_TRUE(WaitForWorkers(1)) << Logs();
  v1::JobSpec spec = Spec(1, 6, 3);
  spec.mutable_resources()->set_kind("gpu");
  spec.mutable_train()->set_recompute(true);
  // Head dimension 64, one of the two the attention kernels take.
  spec.mutable_model()->set_dim(128);
  spec.mutable_model()->set_n_heads(2);
  spec.mutable_model()->set_n_kv_heads(2);
  spec.mutable_model()->set_ffn_dim(256);
  const std::string id = Submit(spec);
  const v1::Job job = WaitJob(id, Terminal, seconds(120));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.reason() << "\n" << Logs();
  EXPECT_EQ(job.progress().step(), 6);
  EXPECT_EQ(job.last_checkpoint_step(), 6);
  EXPECT_TRUE(std::filesystem::exists(dir_.Join("work-g1/jobs/" + id)));
  // The trainer ran the CUDA backend with recomputation, as the worker's config told it.
  const std::string config =
      ReadFile(dir_.Join("work-g1/jobs/" + id + "/attempt-1/config.yaml")).value_or("");
  EXPECT_NE(config.find("device: cuda"), std::string::npos) << config;
  EXPECT_NE(config.find("recompute: true"), std::string::npos) << config;
  EXPECT_NE(Logs().find("host emulation"), std::string::npos) << Logs();
  EXPECT_TRUE(Eventually([&] { return JobProcesses(id, dir_.path()).empty(); }, seconds(5)));
}
#endif

TEST_F(ClusterTest, AfterASchedulerRestartWorkersReconnectAndTheJobSucceeds) {
  ASSERT_NO_FATAL_FAILURE(StartScheduler());
  StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << Logs();
  // Long enough (a few seconds) to still be training while the scheduler is down.
  const std::string id = Submit(Spec(1, 2000, 500));
  const v1::Job job = WaitJob(
      id, [](const v1::Job& j) { return j.progress().step() >= 3 || Terminal(j); }, seconds(60));
  ASSERT_EQ(job.state(), v1::RUNNING) << job.reason() << "\n" << Logs();
  ASSERT_LT(job.progress().step(), 1000);
  const auto trainers = JobProcesses(id, dir_.path());
  ::kill(scheduler_, SIGKILL);
  WaitFor(scheduler_, seconds(5));
  scheduler_ = -1;
  ASSERT_NO_FATAL_FAILURE(StartScheduler());  // same port, same data dir
  const v1::Job done = WaitJob(id, Terminal, seconds(60));
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.reason() << "\n" << Logs();
  EXPECT_EQ(done.progress().step(), 2000) << done.DebugString() << Logs();
  EXPECT_EQ(done.attempt(), 1) << "the running trainer went on; nothing was restarted";
  EXPECT_EQ(done.restarts(), 0);
  EXPECT_TRUE(Eventually([&] { return JobProcesses(id, dir_.path()).empty(); }, seconds(5)));
  (void)trainers;
}

}  // namespace
}  // namespace dyt::worker
