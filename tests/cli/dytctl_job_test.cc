// The real dytctl against a real cluster: a dyt-scheduler process and one dyt-worker process
// (2 CPU slots) on loopback, training tiny synthetic jobs with the real dyt-train. Covers the
// commands that need a job that really runs: logs, logs -f, checkpoints, pull (verification,
// resume of an interrupted download, a broken .part) and workers.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "tests/cli/cli_process.h"
#include "tests/cli/worker_process.h"

namespace dyt::cli {
namespace {

using testing::Eventually;
using testing::FileSha256;
using testing::ProcessResult;
using testing::SchedulerProcess;
using testing::TempDir;
using testing::WorkerProcess;
using Json = nlohmann::json;
using std::chrono::seconds;
namespace fs = std::filesystem;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// An int64 field of protobuf's JSON (a string there), 0 when absent.
int64_t Int64(const Json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return 0;
  const Json& v = object[key];
  return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

class DytctlJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(scheduler_.ready()) << scheduler_.log();
    worker_ = std::make_unique<WorkerProcess>(scheduler_.address(), dir_.path(), "w1", 2);
    ASSERT_TRUE(worker_->started());
    ASSERT_TRUE(Eventually(
        [&] {
          ProcessResult r = Ctl({"--output", "json", "workers"});
          if (r.code != 0) return false;
          Json j = Json::parse(r.out);
          return j["workers"].size() == 1 && j["workers"][0]["connected"] == true;
        },
        seconds(60)))
        << worker_->log();
  }

  void TearDown() override {
    worker_.reset();
    // Nothing this test started is left: the worker and every trainer named dir_ in argv.
    EXPECT_TRUE(Eventually([&] { return testing::LiveProcessesMentioning(dir_.path()).empty(); },
                           seconds(10)));
  }

  ProcessResult Ctl(std::vector<std::string> args, seconds timeout = seconds(60)) {
    std::vector<std::string> argv = {DYT_DYTCTL_BINARY, "--server", scheduler_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, {"DYT_CONFIG=/dev/null", "USER=tester"}, timeout);
  }
  Json CtlJson(std::vector<std::string> args) {
    args.insert(args.begin(), {"--output", "json"});
    ProcessResult r = Ctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return Json::parse(r.out.empty() ? "null" : r.out);
  }
  std::string Logs() {
    return "--- worker\n" + worker_->log() + "--- scheduler\n" + scheduler_.log();
  }

  // A synthetic `test`-preset job on one rank with both slots; its id.
  std::string Submit(int64_t steps, int every_steps, int log_every = 1) {
    ProcessResult r = Ctl({"submit", JobFile(steps, every_steps, log_every)});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  // The spec file of that job.
  std::string JobFile(int64_t steps, int every_steps, int log_every = 1) {
    const std::string file = dir_.Join("job.yaml");
    std::ofstream(file) << "name: cli-job\n"
                           "model: {preset: test, norm: dyt}\n"
                           "data: {synthetic: true, seed: 1}\n"
                           "train: {steps: "
                        << steps << ", batch_size: 4, seq_len: 16, log_every: " << log_every
                        << "}\n"
                           "optimizer: {lr: 0.003, warmup_steps: 2}\n"
                           "resources: {kind: cpu, ranks: 1, slots_per_rank: 2}\n"
                           "checkpoint: {every_steps: "
                        << every_steps << ", keep_last: 3}\n";
    return file;
  }

  // Waits (watch) until the job ends; its final JSON.
  Json WaitEnded(const std::string& id) {
    ProcessResult w = Ctl({"--output", "json", "watch", id}, seconds(180));
    EXPECT_EQ(w.code, 0) << w.err << "\n" << Logs();
    return CtlJson({"get", id});
  }

  SchedulerProcess scheduler_;
  TempDir dir_;
  std::unique_ptr<WorkerProcess> worker_;
};

TEST_F(DytctlJobTest, LogsOfAFinishedJob) {
  const std::string id = Submit(30, 10);
  ASSERT_EQ(WaitEnded(id)["state"], "SUCCEEDED");

  ProcessResult all = Ctl({"logs", id, "--tail", "10000"});
  ASSERT_EQ(all.code, 0) << all.err;
  const std::vector<std::string> lines = Lines(all.out);
  ASSERT_GT(lines.size(), 30u) << all.out;
  for (int step = 1; step <= 30; ++step) {
    EXPECT_NE(all.out.find("step " + std::to_string(step) + "/30 loss "), std::string::npos)
        << step;
  }

  ProcessResult tail = Ctl({"logs", id, "--tail", "5"});
  ASSERT_EQ(tail.code, 0) << tail.err;
  EXPECT_EQ(Lines(tail.out), std::vector<std::string>(lines.end() - 5, lines.end()));

  ProcessResult json = Ctl({"--output", "json", "logs", id, "--tail", "3"});
  ASSERT_EQ(json.code, 0) << json.err;
  const std::vector<std::string> json_lines = Lines(json.out);
  ASSERT_EQ(json_lines.size(), 3u) << json.out;
  for (size_t i = 0; i < 3; ++i) {
    Json line = Json::parse(json_lines[i]);
    EXPECT_EQ(line["rank"], 0);
    EXPECT_EQ(line["attempt"], 1);
    EXPECT_EQ(line["text"], lines[lines.size() - 3 + i]);
    EXPECT_FALSE(line["time"].get<std::string>().empty());
  }

  // -f on a job that has ended prints the tail and returns.
  ProcessResult follow = Ctl({"logs", id, "-f", "--tail", "2"}, seconds(30));
  EXPECT_EQ(follow.code, 0) << follow.err;
  EXPECT_EQ(Lines(follow.out), std::vector<std::string>(lines.end() - 2, lines.end()));
}

// submit --watch: the id, then the job followed to its end, and watch's exit code.
TEST_F(DytctlJobTest, SubmitWatchFollowsTheJobToItsEnd) {
  ProcessResult r = Ctl({"submit", "--watch", JobFile(10, 5)}, seconds(180));
  EXPECT_EQ(r.code, 0) << r.err << "\n" << Logs();
  const std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(id.rfind("job-", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(id + " SUCCEEDED: step 10/10"), std::string::npos) << r.out;
  const Json job = CtlJson({"get", id});
  EXPECT_EQ(job["state"], "SUCCEEDED");
  EXPECT_GT(job["run_seconds"].get<double>(), 0) << job.dump(1);
  // `get` says how long it ran (what a spec's time_limit_s would count).
  ProcessResult get = Ctl({"get", id});
  EXPECT_NE(get.out.find("\nrun time:    "), std::string::npos) << get.out;
}

TEST_F(DytctlJobTest, LogsFollowPrintsNewLinesUntilTheJobEnds) {
  // A job that runs until cancelled; `logs -f` started while it is queued or running.
  const std::string id = Submit(1000000, 0, 10);
  const std::string out = dir_.Join("follow.out");
  const pid_t pid = testing::SpawnWithOutput(
      {DYT_DYTCTL_BINARY, "--server", scheduler_.address(), "logs", id, "-f"},
      {"DYT_CONFIG=/dev/null"}, out, dir_.Join("follow.err"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(Eventually(
      [&] { return testing::ReadText(out).find("step 30/1000000 loss ") != std::string::npos; },
      seconds(120)))
      << testing::ReadText(out) << Logs();
  EXPECT_EQ(CtlJson({"cancel", id, "--reason", "enough"})["state"], "CANCELLED");
  // -f returns by itself once the job has ended.
  int status = -1;
  EXPECT_TRUE(Eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, seconds(60)));
  if (::waitpid(pid, nullptr, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << testing::ReadText(dir_.Join("follow.err"));
  const std::string followed = testing::ReadText(out);
  EXPECT_NE(followed.find("step 10/1000000 loss "), std::string::npos) << followed;
  // Everything it printed is the job's output, in order.
  ProcessResult all = Ctl({"logs", id, "--tail", "10000"});
  ASSERT_EQ(all.code, 0);
  EXPECT_EQ(all.out.rfind(followed, 0), 0u) << "followed:\n" << followed << "\nall:\n" << all.out;
}

// `logs -f` outlives a scheduler crash: it reconnects (saying so on stderr), goes on with the
// lines the restarted scheduler collects, prints none twice, and still ends with the job.
TEST_F(DytctlJobTest, LogsFollowReconnectsAfterTheSchedulerRestarts) {
  const std::string id = Submit(1000000, 0, 10);
  const std::string out = dir_.Join("follow.out");
  const std::string err = dir_.Join("follow.err");
  const pid_t pid = testing::SpawnWithOutput(
      {DYT_DYTCTL_BINARY, "--server", scheduler_.address(), "logs", id, "-f"},
      {"DYT_CONFIG=/dev/null"}, out, err);
  ASSERT_GT(pid, 0);
  auto has_step = [&](int64_t step) {
    return testing::ReadText(out).find("step " + std::to_string(step) + "/1000000 loss ") !=
           std::string::npos;
  };
  ASSERT_TRUE(Eventually([&] { return has_step(20); }, seconds(120)))
      << testing::ReadText(out) << Logs();
  ASSERT_TRUE(scheduler_.CrashAndRestart()) << scheduler_.log();
  // The trainer goes on; lines well after the crash arrive through the new scheduler.
  int64_t last_before = 20;
  while (has_step(last_before + 10)) last_before += 10;
  ASSERT_TRUE(Eventually([&] { return has_step(last_before + 50); }, seconds(120)))
      << testing::ReadText(out) << testing::ReadText(err) << Logs();
  EXPECT_NE(testing::ReadText(err).find("reconnecting"), std::string::npos)
      << testing::ReadText(err);
  // The new scheduler does not have the lines from before the crash, and says where they are:
  // the worker's rank log, which has them.
  const std::string note = "dytctl: note: output from before the scheduler started (";
  const std::string where =
      "Z) is not kept by it; the workers keep every line in "
      "<work-dir>/jobs/" +
      id + "/attempt-<n>/rank-<r>.log (attempt 1 on w1)\n";
  EXPECT_NE(testing::ReadText(err).find(note), std::string::npos) << testing::ReadText(err);
  ProcessResult again = Ctl({"logs", id, "--tail", "10000"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.err.rfind(note, 0), 0u) << again.err;
  EXPECT_NE(again.err.find(where), std::string::npos) << again.err;
  EXPECT_EQ(again.out.find("step 20/1000000 loss "), std::string::npos);
  EXPECT_NE(testing::ReadText(dir_.Join("work-w1/jobs/" + id + "/attempt-1/rank-0.log"))
                .find("step 20/1000000 loss "),
            std::string::npos);
  EXPECT_EQ(CtlJson({"cancel", id})["state"], "CANCELLED");
  // `get` of the ended job still says where its attempt ran.
  ProcessResult get = Ctl({"get", id});
  EXPECT_NE(get.out.find("\nran on:      attempt 1 on w1\n"), std::string::npos) << get.out;
  int status = -1;
  EXPECT_TRUE(Eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, seconds(60)));
  if (::waitpid(pid, nullptr, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << testing::ReadText(err);
  std::set<std::string> seen;
  for (const std::string& line : Lines(testing::ReadText(out))) {
    if (line.find("/1000000 loss ") == std::string::npos) continue;
    EXPECT_TRUE(seen.insert(line).second) << "printed twice: " << line;
  }
}

TEST_F(DytctlJobTest, CheckpointsListsTheKeptCheckpoints) {
  const std::string id = Submit(50, 10);
  ASSERT_EQ(WaitEnded(id)["state"], "SUCCEEDED");
  Json list = CtlJson({"checkpoints", id});
  ASSERT_EQ(list["checkpoints"].size(), 3u) << list.dump(1);  // keep_last: 3
  const std::vector<std::string> steps = {"30", "40", "50"};
  for (size_t i = 0; i < 3; ++i) {
    const Json& c = list["checkpoints"][i];
    EXPECT_EQ(c["job_id"], id);
    EXPECT_EQ(c["step"], steps[i]);
    EXPECT_EQ(c["attempt"], 1);
    const std::string path = c["path"];
    EXPECT_TRUE(fs::is_directory(path)) << path;
    ASSERT_GE(c["files"].size(), 2u);
    int64_t total = 0;
    for (const Json& f : c["files"]) {
      const std::string file = path + "/" + f["name"].get<std::string>();
      EXPECT_EQ(std::to_string(fs::file_size(file)), f["size"]) << file;
      EXPECT_EQ(FileSha256(file), f["sha256"]) << file;
      total += std::stoll(f["size"].get<std::string>());
    }
    // total_bytes is the whole directory: the listed files and the trainer's manifest.json,
    // which the record does not list (dytctl pull fetches and verifies it too).
    EXPECT_EQ(std::to_string(total + static_cast<int64_t>(fs::file_size(path + "/manifest.json"))),
              c["total_bytes"]);
    EXPECT_GT(c["loss"].get<double>(), 0);
  }

  ProcessResult table = Ctl({"checkpoints", id});
  ASSERT_EQ(table.code, 0) << table.err;
  const std::vector<std::string> rows = Lines(table.out);
  ASSERT_EQ(rows.size(), 4u) << table.out;
  EXPECT_EQ(rows[0].rfind("STEP  ATTEMPT  FILES  SIZE", 0), 0u) << rows[0];
  EXPECT_EQ(rows[3].rfind("50  ", 0), 0u) << rows[3];
  EXPECT_NE(rows[3].find(list["checkpoints"][2]["path"].get<std::string>()), std::string::npos);
}

TEST_F(DytctlJobTest, PullVerifiesEveryFileAndResumesAnInterruptedDownload) {
  const std::string id = Submit(20, 10);
  ASSERT_EQ(WaitEnded(id)["state"], "SUCCEEDED");
  const std::string out = dir_.Join("pulled");
  Json pulled = CtlJson({"pull", id, "-o", out, "--chunk-bytes", "4096"});
  EXPECT_EQ(pulled["job_id"], id);
  EXPECT_EQ(pulled["step"], 20);
  EXPECT_EQ(pulled["verified"], true);
  EXPECT_EQ(pulled["bytes_resumed"], 0);
  EXPECT_EQ(pulled["bytes_received"], pulled["bytes_total"]);
  const Json record = CtlJson({"checkpoints", id})["checkpoints"].back();
  ASSERT_EQ(pulled["files"].size(), record["files"].size());
  std::string biggest;
  int64_t biggest_size = 0;
  for (const Json& f : pulled["files"]) {
    const std::string file = out + "/" + f["name"].get<std::string>();
    EXPECT_EQ(FileSha256(file), f["sha256"]) << file;
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(file)), f["size"].get<int64_t>());
    if (f["size"].get<int64_t>() > biggest_size) {
      biggest_size = f["size"];
      biggest = f["name"];
    }
  }
  EXPECT_TRUE(fs::exists(out + "/manifest.json"));  // sent by the scheduler, verified too
  ASSERT_GT(biggest_size, 8192);

  // Interrupted in the middle of the biggest file: its first half in a .part file.
  const std::string file = out + "/" + biggest;
  fs::rename(file, file + ".part");
  fs::resize_file(file + ".part", biggest_size / 2);
  Json resumed = CtlJson({"pull", id, "-o", out, "--chunk-bytes", "4096"});
  EXPECT_EQ(resumed["verified"], true);
  EXPECT_GE(resumed["bytes_resumed"].get<int64_t>(), biggest_size / 2);
  EXPECT_LE(resumed["bytes_received"].get<int64_t>(),
            resumed["bytes_total"].get<int64_t>() - biggest_size / 2);
  EXPECT_FALSE(fs::exists(file + ".part"));
  for (const Json& f : record["files"]) {
    EXPECT_EQ(FileSha256(out + "/" + f["name"].get<std::string>()), f["sha256"]);
  }

  // The same in table form says so.
  fs::rename(file, file + ".part");
  fs::resize_file(file + ".part", biggest_size / 3);
  ProcessResult table = Ctl({"pull", id, "-o", out});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.err.find("resuming: "), std::string::npos) << table.err;
  EXPECT_NE(table.out.find("pulled " + id + " step 20 into " + out + ": "), std::string::npos);
  EXPECT_NE(table.out.find("sha256 verified (resumed after "), std::string::npos) << table.out;
  ProcessResult again = Ctl({"pull", id, "-o", out});
  EXPECT_NE(again.out.find("(already there)"), std::string::npos) << again.out;
  // Both say the same size (the checkpoint's files; manifest.json came with the first).
  const auto size_said = [](const std::string& text) {
    const size_t files = text.find(" files, ");
    return files == std::string::npos ? text
                                      : text.substr(files, text.find(", sha256", files) - files);
  };
  EXPECT_EQ(size_said(again.out), size_said(table.out)) << table.out << again.out;

  // A .part whose bytes are wrong fails the check and is removed; the next pull succeeds.
  fs::remove(file);
  std::ofstream(file + ".part") << std::string(static_cast<size_t>(biggest_size / 2), 'x');
  ProcessResult bad = Ctl({"pull", id, "-o", out});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find(biggest), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(file + ".part"));
  EXPECT_FALSE(fs::exists(file));
  Json fixed = CtlJson({"pull", id, "-o", out});
  EXPECT_EQ(fixed["verified"], true);
  for (const Json& f : record["files"]) {
    if (f["name"] == biggest) {
      EXPECT_EQ(FileSha256(file), f["sha256"]);
    }
  }

  // An older step, and a step that does not exist.
  Json older = CtlJson({"pull", id, "--step", "10", "-o", dir_.Join("step10")});
  EXPECT_EQ(older["step"], 10);
  ProcessResult missing = Ctl({"pull", id, "--step", "15", "-o", dir_.Join("step15")});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "dytctl: job " + id + " has no checkpoint at step 15 (it has: 10, 20)\n");
}

// An operator drains the only worker with --preempt: its running job checkpoints, is requeued
// and waits; undrained, the worker resumes it from that checkpoint as attempt 2.
TEST_F(DytctlJobTest, DrainWithPreemptRequeuesAndUndrainResumesFromTheCheckpoint) {
  const std::string id = Submit(1000000, 0, 10);
  ASSERT_TRUE(Eventually(
      [&] {
        return Int64(CtlJson({"get", id})["progress"], "step") >= 20;
      },
      seconds(120)))
      << Logs();
  ProcessResult drain = Ctl({"workers", "drain", "w1", "--reason", "maintenance", "--preempt"});
  ASSERT_EQ(drain.code, 0) << drain.err;
  EXPECT_EQ(drain.out,
            "worker w1 is draining: no new work goes to it; stopping with a checkpoint and "
            "requeueing: " +
                id + "\n");
  Json job;
  ASSERT_TRUE(Eventually(
      [&] {
        job = CtlJson({"get", id});
        return job["state"] == "QUEUED" && Int64(job, "last_checkpoint_step") > 0;
      },
      seconds(120)))
      << job.dump(1) << Logs();
  const int64_t saved = Int64(job, "last_checkpoint_step");
  EXPECT_GE(saved, 20);
  EXPECT_EQ(job.value("restarts", 0), 0);
  bool preempted = false;
  for (const Json& e : job["events"]) {
    preempted |=
        e["state"] == "PREEMPTED" && e["reason"] == "preempted: worker w1 is draining: maintenance";
  }
  EXPECT_TRUE(preempted) << job.dump(1);
  ProcessResult table = Ctl({"workers"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find(" DRAINING\n"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" ago: maintenance\n"), std::string::npos) << table.out;
  // Drained, the idle worker takes nothing.
  std::this_thread::sleep_for(seconds(2));
  EXPECT_EQ(CtlJson({"get", id})["state"], "QUEUED");

  ProcessResult undrain = Ctl({"workers", "undrain", "w1"});
  ASSERT_EQ(undrain.code, 0) << undrain.err;
  EXPECT_EQ(undrain.out, "worker w1 takes new work\n");
  ASSERT_TRUE(Eventually(
      [&] {
        job = CtlJson({"get", id});
        return job["state"] == "RUNNING" && job["attempt"] == 2 &&
               Int64(job["progress"], "step") > saved;
      },
      seconds(120)))
      << job.dump(1) << Logs();
  EXPECT_NE(Ctl({"logs", id, "--tail", "10000"}).out.find("at step " + std::to_string(saved)),
            std::string::npos);
  EXPECT_EQ(CtlJson({"cancel", id})["state"], "CANCELLED");
}

TEST_F(DytctlJobTest, WorkersShowsTheWorkerItsSlotsAndItsJob) {
  Json idle = CtlJson({"workers"});
  ASSERT_EQ(idle["workers"].size(), 1u);
  const Json& w = idle["workers"][0];
  EXPECT_EQ(w["id"], "w1");
  EXPECT_EQ(w["slot_kind"], "cpu");
  EXPECT_EQ(w["slots"], 2);
  EXPECT_EQ(w["slots_busy"], 0);
  EXPECT_EQ(w["connected"], true);
  EXPECT_FALSE(w["hostname"].get<std::string>().empty());
  EXPECT_TRUE(w["job_ids"].empty());

  const std::string id = Submit(1000000, 0, 100);
  Json busy;
  ASSERT_TRUE(Eventually(
      [&] {
        busy = CtlJson({"workers"});
        return busy["workers"][0]["slots_busy"] == 2;
      },
      seconds(60)))
      << busy.dump(1);
  EXPECT_EQ(busy["workers"][0]["job_ids"], Json::array({id}));
  ProcessResult table = Ctl({"workers"});
  ASSERT_EQ(table.code, 0) << table.err;
  const std::vector<std::string> rows = Lines(table.out);
  ASSERT_EQ(rows.size(), 2u) << table.out;
  EXPECT_EQ(rows[0].rfind("ID  HOST", 0), 0u) << rows[0];
  EXPECT_EQ(rows[1].rfind("w1  ", 0), 0u) << rows[1];
  EXPECT_NE(rows[1].find(" cpu "), std::string::npos);
  EXPECT_NE(rows[1].find(" yes "), std::string::npos);
  EXPECT_NE(rows[1].find(id), std::string::npos);

  EXPECT_EQ(CtlJson({"cancel", id})["state"], "CANCELLED");
  EXPECT_TRUE(Eventually([&] { return CtlJson({"workers"})["workers"][0]["slots_busy"] == 0; },
                         seconds(60)));
}

}  // namespace
}  // namespace dyt::cli
