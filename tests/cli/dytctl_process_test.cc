// The real dytctl binary against a real dyt-scheduler process on loopback: error messages a
// person understands, and submit/list/get/cancel/watch round trips through --output json.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "services/cli/client.h"
#include "services/cli/job_spec_yaml.h"
#include "tests/cli/cli_process.h"

namespace dyt::cli {
namespace {

using testing::ProcessResult;
using testing::Run;
using testing::SchedulerProcess;
using testing::TempDir;
using Json = nlohmann::json;

const std::string kJobs = std::string(DYT_SOURCE_DIR) + "/examples/jobs/";

ProcessResult Dytctl(const std::string& server, std::vector<std::string> args,
                     std::vector<std::string> env = {}) {
  std::vector<std::string> argv = {DYT_DYTCTL_BINARY};
  if (!server.empty()) argv.insert(argv.end(), {"--server", server});
  argv.insert(argv.end(), args.begin(), args.end());
  env.push_back("DYT_CONFIG=/dev/null");  // never read the developer's own config
  return Run(argv, env);
}

TEST(DytctlProcessTest, UnreachableServerSaysSoQuickly) {
  auto start = std::chrono::steady_clock::now();
  ProcessResult r = Dytctl("127.0.0.1:1", {"list"});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "dytctl: cannot reach the dyt scheduler at 127.0.0.1:1: connection refused; is "
            "dyt-scheduler running? (--server/DYT_SERVER)\n");
  EXPECT_EQ(r.out, "");
  EXPECT_LT(s, 20.0);

  // The token commands too (they used to wait out their 30 s call deadline).
  for (const std::vector<std::string>& token : std::vector<std::vector<std::string>>{
           {"token", "create", "--user", "bob"}, {"token", "list"}, {"token", "revoke", "abc"}}) {
    start = std::chrono::steady_clock::now();
    ProcessResult t = Dytctl("127.0.0.1:1", token);
    EXPECT_EQ(t.code, 1) << t.err;
    EXPECT_NE(t.err.find("cannot reach the dyt scheduler at 127.0.0.1:1: connection refused"),
              std::string::npos)
        << t.err;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              20.0);
  }

  ProcessResult env = Dytctl("", {"get", "job-000000000001"}, {"DYT_SERVER=127.0.0.1:1"});
  EXPECT_EQ(env.code, 1);
  EXPECT_NE(env.err.find("cannot reach the dyt scheduler at 127.0.0.1:1: connection refused"),
            std::string::npos)
      << env.err;
}

// Every command-line mistake exits 2 before anything is sent (the server address here is
// unreachable: asking it would exit 1), with one line naming what was wrong and where to look.
TEST(DytctlProcessTest, BadUsageExitsTwoNamingTheMistake) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"frobnicate"},
       "dytctl: unknown command 'frobnicate'; the commands are submit, list, get, watch, logs, "
       "cancel, checkpoints, pull, workers, token, login (dytctl --help)\n"},
      {{"token", "mint"},
       "dytctl: unknown command 'token mint'; the token commands are create, list, revoke "
       "(dytctl token --help)\n"},
      {{"token"}, "dytctl: 'token' needs a command: create, list, revoke (dytctl token --help)\n"},
      {{"workers", "frob"},
       "dytctl: unknown command 'workers frob'; the workers commands are drain, undrain, remove "
       "(dytctl workers --help)\n"},
      {{"workers", "drain", ""}, "dytctl: id: must not be empty (dytctl workers drain --help)\n"},
      {{"workers", "undrain", "w1", "--preempt"},
       "dytctl: The following argument was not expected: --preempt (dytctl workers undrain "
       "--help)\n"},
      {{},
       "dytctl: a command is needed: submit, list, get, watch, logs, cancel, checkpoints, "
       "pull, workers, token, login (dytctl --help)\n"},
      {{"--output", "xml", "list"}, "dytctl: --output: xml not in {table,json}"},
      {{"pull", "job-1"}, "dytctl: --dir is required (dytctl pull --help)\n"},
      {{"get", ""}, "dytctl: id: must not be empty (dytctl get --help)\n"},
      {{"token", "revoke", ""}, "dytctl: id: must not be empty (dytctl token revoke --help)\n"},
      {{"get", " "}, "dytctl: id: must not be empty (dytctl get --help)\n"},
      {{"pull", "job-1", "-o", ""}, "dytctl: --dir: must not be empty (dytctl pull --help)\n"},
      {{"submit", ""}, "dytctl: file: must not be empty (dytctl submit --help)\n"},
      {{"login", "--token", ""}, "dytctl: --token: must not be empty (dytctl login --help)\n"},
      {{"token", "create", "--user", ""},
       "dytctl: --user: must not be empty (dytctl token create --help)\n"},
      {{"list", "--state", "frob"}, "dytctl: --state: unknown state 'frob' (queued, "},
      {{"submit", kJobs + "tiny-cpu-synthetic.yaml", "--steps", "99999999999999999999"},
       "dytctl: --steps: must be an integer in [1, 9223372036854775807] (got "
       "'99999999999999999999') (dytctl submit --help)\n"},
      {{"submit", kJobs + "tiny-cpu-synthetic.yaml", "--priority", "1001"},
       "dytctl: --priority: must be an integer in [0, 1000] (got '1001')"},
      {{"submit", kJobs + "tiny-cpu-synthetic.yaml", "--ranks", "x"},
       "dytctl: --ranks: must be an integer in [1, 4096] (got 'x')"},
      {{"submit", kJobs + "tiny-cpu-synthetic.yaml", "--set", "bogus"},
       "dytctl: --set bogus: expected key=value"},
      {{"pull", "job-1", "-o", "/tmp/x", "--step", "-1"},
       "dytctl: --step: must be a step >= 1 (leave it out for the latest checkpoint; got '-1')"},
      {{"token", "create", "--user", "bob", "--expires", "10y"},
       "dytctl: --expires: must be a number with s, m, h or d (30d, 12h), or never (got '10y')"},
      {{"token", "create", "--user", "bob", "--expires", "0s"},
       "dytctl: --expires: must be above 0 (or never; got '0s')"},
      {{"logs", "job-1", "--tail", "x"},
       "dytctl: --tail: must be an integer in [1, 10000] (got 'x') (dytctl logs --help)\n"},
      {{"token", "create", "--user", "bob", "--expires", "1000000d"},
       "dytctl: --expires: must be at most 3650d (10 years), or never (got '1000000d')"},
  };
  for (const auto& [args, message] : cases) {
    ProcessResult r = Dytctl("127.0.0.1:1", args);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_EQ(r.err.rfind(message, 0), 0u) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_EQ(r.out, "");
  }
  // A server address that cannot be one (an empty one used to mean the default).
  const std::pair<std::string, std::string> servers[] = {
      {"", "dytctl: --server: must not be empty (dytctl list --help)\n"},
      {"sched", "dytctl: --server: must be HOST:PORT (got 'sched') (dytctl list --help)\n"},
      {"sched:65536", "dytctl: --server: must be HOST:PORT with a port 1..65535 (got "},
      {"::1:50051", "dytctl: --server: must be HOST:PORT, an IPv6 host in brackets ([::1]:50051)"},
  };
  for (const auto& [server, message] : servers) {
    ProcessResult r = Dytctl("", {"--server", server, "list"});
    EXPECT_EQ(r.code, 2) << server << ": " << r.err;
    EXPECT_EQ(r.err.rfind(message, 0), 0u) << server << ": " << r.err;
  }
  ProcessResult env = Dytctl("", {"list"}, {"DYT_SERVER=sched"});
  EXPECT_EQ(env.code, 1) << env.err;
  EXPECT_EQ(env.err, "dytctl: DYT_SERVER: must be HOST:PORT (got 'sched')\n");
  // Global options may follow the command: `workers --output json` is no command 'json'.
  ProcessResult late = Dytctl("127.0.0.1:1", {"workers", "--output", "json"});
  EXPECT_EQ(late.code, 1) << late.err;
  EXPECT_NE(late.err.find("cannot reach the dyt scheduler"), std::string::npos) << late.err;
  // --help is not a mistake.
  ProcessResult help = Dytctl("", {"token", "--help"});
  EXPECT_EQ(help.code, 0) << help.err;
  EXPECT_NE(help.out.find("create"), std::string::npos) << help.out;
}

// A spec too big for the scheduler is refused before connecting (the server here is
// unreachable), with the size and what to do, instead of gRPC's "Received message larger than
// max"; a file that cannot be a spec is not read at all.
TEST(DytctlProcessTest, ASpecTooBigIsRefusedBeforeSending) {
  TempDir dir;
  const std::string many = dir.Join("many-paths.yaml");
  {
    std::ofstream out(many);
    out << "name: many\nmodel: {preset: test}\ntrain: {steps: 5, batch_size: 2}\n"
           "resources: {ranks: 1}\ndata:\n  train_paths:\n";
    for (int i = 0; i < 20000; ++i)
      out << "    - /data/shards/" << std::string(300, 'x') << i << ".bin\n";
  }
  ProcessResult r = Dytctl("127.0.0.1:1", {"submit", many});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(many + ": the job spec is "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bytes serialized; the scheduler takes at most 1048576 (20000 data paths: "
                       "name shards with a glob such as shards/train-*.bin)"),
            std::string::npos)
      << r.err;

  const std::string huge = dir.Join("huge.yaml");
  std::ofstream(huge).close();
  std::filesystem::resize_file(huge, (16 << 20) + 1);
  r = Dytctl("127.0.0.1:1", {"submit", huge});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "dytctl: " + huge +
                       ": 16777217 bytes; a job spec file is at most 16 MiB (is it "
                       "the right file?)\n");
  r = Dytctl("127.0.0.1:1", {"submit", dir.path()});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "dytctl: " + dir.path() + ": is a directory, not a job spec file\n");
  r = Dytctl("127.0.0.1:1", {"submit", "/dev/zero"});  // would never end
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "dytctl: /dev/zero: not a regular file (a job spec is a YAML file)\n");
}

class DytctlServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(scheduler_.ready()) << scheduler_.log(); }
  ProcessResult Ctl(std::vector<std::string> args) {
    return Dytctl(scheduler_.address(), std::move(args), {"USER=tester"});
  }
  Json CtlJson(std::vector<std::string> args) {
    args.insert(args.begin(), {"--output", "json"});
    ProcessResult r = Ctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return Json::parse(r.out.empty() ? "null" : r.out);
  }

  SchedulerProcess scheduler_;
  TempDir dir_;
};

TEST_F(DytctlServerTest, InvalidSpecNamesTheFileAndLine) {
  const std::string job = dir_.Join("job.yaml");
  std::ofstream(job) << "name: bad-batch\n"
                        "model:\n"
                        "  preset: test\n"
                        "data:\n"
                        "  synthetic: true\n"
                        "train:\n"
                        "  steps: 10\n"
                        "  batch_size: 0\n"
                        "resources:\n"
                        "  kind: cpu\n"
                        "  ranks: 1\n";
  ProcessResult r = Ctl({"submit", job});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "dytctl: " + job + ":8: train.batch_size: must be >= 1 (got 0)\n");
  // --dry-run: the same answer, from the same checks.
  r = Ctl({"submit", "--dry-run", job});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "dytctl: " + job + ":8: train.batch_size: must be >= 1 (got 0)\n");
  // A valid spec is checked and previewed (no worker here: it would be held), not queued.
  r = Ctl({"--output", "table", "submit", "--dry-run", job, "--set", "train.batch_size=4"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(job + ": valid; job bad-batch (owner ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(", priority 0) would be held: asks 1 rank x 1 cpu slot; there are no "
                       "schedulable cpu workers"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("; not submitted (--dry-run)\n"), std::string::npos) << r.out;

  // The server's error names the option that set the field (--priority itself is checked on
  // the command line: exit 2).
  r = Ctl({"submit", job, "--set", "train.batch_size=4", "--set", "priority=5000"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "dytctl: --set priority=5000: priority: must be between 0 and 1000 (got 5000)\n");

  std::ofstream(job) << "name: x\ntrain:\n  steps: 10\n  batch: 3\n";
  r = Ctl({"submit", job});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("dytctl: " + job + ":4:3: train.batch: unknown field", 0), 0u) << r.err;

  std::ofstream(job) << "name: x\ntrain: {steps: 10\n";
  r = Ctl({"submit", job});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("dytctl: " + job + ":3:1: YAML syntax error: ", 0), 0u) << r.err;

  // Nothing was stored.
  EXPECT_EQ(CtlJson({"list"})["jobs"].size(), 0u);
}

TEST_F(DytctlServerTest, UnknownJobIdIsNotFound) {
  for (const char* cmd : {"get", "cancel", "watch"}) {
    ProcessResult r = Ctl({cmd, "job-000000000099"});
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_EQ(r.err, "dytctl: job job-000000000099: not found\n") << cmd;
  }
}

TEST_F(DytctlServerTest, SubmitListGetCancelRoundTrip) {
  ProcessResult plain = Ctl({"submit", kJobs + "tiny-cpu-synthetic.yaml"});
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(plain.out, "job-000000000001\n");

  Json submitted = CtlJson({"submit", kJobs + "kjv-dyt-tiny.yaml", "--name", "kjv-short", "--steps",
                            "50", "--ranks", "1", "--set", "model.norm=rmsnorm"});
  const std::string id = submitted["id"];
  EXPECT_EQ(id, "job-000000000002");
  EXPECT_EQ(submitted["state"], "QUEUED");
  EXPECT_EQ(submitted["spec"]["name"], "kjv-short");
  EXPECT_EQ(submitted["spec"]["owner"], "tester");
  EXPECT_EQ(submitted["spec"]["model"]["norm"], "rmsnorm");
  EXPECT_EQ(submitted["spec"]["train"]["steps"], "50");  // int64 is a string in proto JSON
  EXPECT_EQ(submitted["spec"]["data"]["train_paths"][0],
            std::string(DYT_SOURCE_DIR) + "/data/kjv/train.bin");

  Json all = CtlJson({"list"});
  ASSERT_EQ(all["jobs"].size(), 2u);
  EXPECT_EQ(all["jobs"][0]["id"], "job-000000000001");
  EXPECT_EQ(CtlJson({"list", "--name", "kjv-short"})["jobs"].size(), 1u);
  EXPECT_EQ(CtlJson({"list", "--owner", "nobody"})["jobs"].size(), 0u);

  Json got = CtlJson({"get", id});
  EXPECT_EQ(got["id"], id);
  ASSERT_EQ(got["events"].size(), 1u);
  EXPECT_EQ(got["events"][0]["reason"], "submitted");

  Json cancelled = CtlJson({"cancel", id, "--reason", "wrong norm"});
  EXPECT_EQ(cancelled["state"], "CANCELLED");
  EXPECT_EQ(cancelled["events"].back()["reason"], "wrong norm");
  EXPECT_EQ(CtlJson({"list", "--state", "cancelled"})["jobs"].size(), 1u);
  EXPECT_EQ(CtlJson({"list", "--state", "QUEUED"})["jobs"][0]["id"], "job-000000000001");

  ProcessResult again = Ctl({"cancel", id});
  EXPECT_EQ(again.code, 1);
  EXPECT_EQ(again.err, "dytctl: job " + id +
                           " is CANCELLED; only a job that has not finished can be cancelled\n");

  ProcessResult table = Ctl({"list"});
  ASSERT_EQ(table.code, 0);
  EXPECT_EQ(table.out.rfind("ID  ", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("kjv-short"), std::string::npos);
  EXPECT_NE(table.out.find("CANCELLED"), std::string::npos);
  ProcessResult get = Ctl({"get", id});
  EXPECT_NE(get.out.find("state:       CANCELLED (attempt 0): wrong norm"), std::string::npos)
      << get.out;

  // watch of a job that has ended: its summary and why, exit 3 because it did not succeed.
  ProcessResult watch = Ctl({"watch", id});
  EXPECT_EQ(watch.code, 3) << watch.err;
  EXPECT_NE(watch.out.find(id + " CANCELLED"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("\nreason: wrong norm\n"), std::string::npos) << watch.out;
  ProcessResult watch_json = Ctl({"--output", "json", "watch", id});
  EXPECT_EQ(watch_json.code, 3);
  EXPECT_EQ(Json::parse(watch_json.out.substr(0, watch_json.out.find('\n')))["state"], "CANCELLED");

  // A reason of several lines (a failed rank's carries its stderr tail) keeps the events table
  // at one line per event; the state line (its further lines indented under it) and --output
  // json have it whole.
  const std::string first = "job-000000000001";
  EXPECT_EQ(CtlJson({"cancel", first, "--reason", "first line\nsecond\nthird"})["state"],
            "CANCELLED");
  ProcessResult multi = Ctl({"get", first});
  EXPECT_NE(multi.out.find("first line [+2 lines: dytctl --output json get " + first + "]\n"),
            std::string::npos)
      << multi.out;
  EXPECT_NE(multi.out.find("CANCELLED (attempt 0): first line\n             second\n"
                           "             third\n"),
            std::string::npos)
      << multi.out;
  size_t seconds_shown = 0;
  for (size_t at = multi.out.find("second"); at != std::string::npos;
       at = multi.out.find("second", at + 1)) {
    ++seconds_shown;
  }
  EXPECT_EQ(seconds_shown, 1u) << multi.out;
}

TEST_F(DytctlServerTest, ListPagesThroughEveryJob) {
  ClientConfig config;
  config.server = scheduler_.address();
  DytClient client(config);
  ASSERT_TRUE(client.Connect().ok());
  auto file = LoadJobSpecFile(kJobs + "tiny-cpu-synthetic.yaml", "pager");
  ASSERT_TRUE(file.ok());
  for (int i = 0; i < 23; ++i) ASSERT_TRUE(client.Submit(file->spec, "").ok());
  v1::ListJobsRequest filter;
  filter.set_page_size(5);
  auto jobs = client.ListAll(filter);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 23u);
  for (size_t i = 1; i < jobs->size(); ++i) EXPECT_LT((*jobs)[i - 1].id(), (*jobs)[i].id());
  EXPECT_EQ(CtlJson({"list", "--owner", "pager"})["jobs"].size(), 23u);
}

}  // namespace
}  // namespace dyt::cli
