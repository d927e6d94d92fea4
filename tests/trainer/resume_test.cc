// Checkpoint/resume through the real dyt-train binary, each run its own process:
//  * N steps straight == k steps, save, a fresh process resuming, N - k steps: bit-identical
//    losses at every step and bit-identical parameters and optimizer state at the end, for
//    several k, with gradient accumulation on and shard data (the loader position matters);
//  * SIGTERM during training gives exit code 3 and a checkpoint that resumes;
//  * ranks whose checkpoint stores differ resume from rank 0's choice or fail together.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/common/process.h"
#include "tests/trainer/train_process.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/data/shard_writer.h"
#include "trainer/dist/make_communicator.h"
#include "trainer/model/config.h"
#include "trainer/model/rng.h"
#include "trainer/optim/adamw.h"
#include "trainer/train/trainer.h"

namespace dyt {
namespace {

namespace fs = std::filesystem;
using testing::RunDytTrain;
using testing::StepLosses;

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dyt_resume_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<int32_t> tokens(30000);
    Rng rng(17);
    // Not uniform noise: a repeating pattern with noise, so the loss moves.
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = int32_t((i % 7) * 11 + rng.NextBelow(5));
    }
    ASSERT_TRUE(WriteShard((dir_ / "train.bin").string(), tokens, 96, "").ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  void ExpectSigtermCheckpoints(const std::string& name, bool output_reader_gone);

  // Writes a config whose checkpoints go to <dir>/<name>/ckpt; returns its path.
  std::string Config(const std::string& name, int64_t steps, int every_steps = 0) {
    const fs::path run = dir_ / name;
    fs::create_directories(run);
    std::ofstream(run / "job.yaml")
        << "model: {preset: test}\n"
        << "data: {train_paths: " << (dir_ / "train.bin").string() << ", seed: 5}\n"
        << "train: {steps: " << steps << ", batch_size: 3, grad_accum: 2, log_every: 1,"
        << " threads: 2}\n"
        << "optimizer: {lr: 0.003, warmup_steps: 3}\n"
        << "checkpoint: {dir: " << (run / "ckpt").string() << ", every_steps: " << every_steps
        << ", keep_last: 2}\n";
    return (run / "job.yaml").string();
  }

  fs::path dir_;
};

void ExpectSameState(const CheckpointState& a, const CheckpointState& b) {
  ASSERT_EQ(a.params.size(), b.params.size());
  EXPECT_EQ(0, std::memcmp(a.params.data(), b.params.data(), a.params.size() * 4)) << "params";
  EXPECT_EQ(0, std::memcmp(a.adam_m.data(), b.adam_m.data(), a.adam_m.size() * 4)) << "adam m";
  EXPECT_EQ(0, std::memcmp(a.adam_v.data(), b.adam_v.data(), a.adam_v.size() * 4)) << "adam v";
  EXPECT_EQ(a.adam_step, b.adam_step);
  EXPECT_EQ(a.loader, b.loader);
}

TEST_F(ResumeTest, ResumedRunsAreBitIdenticalToAStraightRun) {
  const int64_t N = 12;
  const std::string straight_events = (dir_ / "straight.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", Config("straight", N)}, straight_events), 0);
  const auto straight = StepLosses(straight_events);
  ASSERT_EQ(straight.size(), size_t(N));
  auto ref = FindLatestGood((dir_ / "straight" / "ckpt").string(), nullptr);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  ASSERT_EQ(ref->state.step, N);
  EXPECT_LT(straight.at(N), straight.at(1)) << "the run must learn something";

  for (int64_t k : {1, 5, 11}) {
    SCOPED_TRACE("k = " + std::to_string(k));
    const std::string name = "split" + std::to_string(k);
    const std::string cfg = Config(name, N);
    const std::string events = (dir_ / (name + ".jsonl")).string();
    ASSERT_EQ(RunDytTrain({"--config", cfg, "--stop-at-step", std::to_string(k)}, events), 0);
    ASSERT_EQ(RunDytTrain({"--config", cfg, "--resume", "auto"}, events), 0);
    const auto split = StepLosses(events);
    ASSERT_EQ(split.size(), size_t(N));
    for (int64_t s = 1; s <= N; ++s) {
      EXPECT_EQ(split.at(s), straight.at(s)) << "loss at step " << s;
    }
    auto got = FindLatestGood((dir_ / name / "ckpt").string(), nullptr);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameState(got->state, ref->state);
  }
}

// dyt-train with its events in a file, SIGTERM once it has taken a few steps: exit code 3, a
// checkpoint of the last finished step, and a resume from it. With `output_reader_gone` its
// stdout and stderr are a pipe whose reader has closed before the signal (a worker daemon that
// died): log lines then fail with EPIPE instead of killing it with SIGPIPE.
void ResumeTest::ExpectSigtermCheckpoints(const std::string& name, bool output_reader_gone) {
  const std::string cfg = Config(name, 1000000);
  const std::string events = (dir_ / (name + ".jsonl")).string();
  int out_pipe[2] = {-1, -1};
  ASSERT_EQ(::pipe(out_pipe), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (output_reader_gone) {
      ::dup2(out_pipe[1], 1);
      ::dup2(out_pipe[1], 2);
    }
    ::close(out_pipe[0]);  // before fd 3 is set: the pipe may have been given fd 3 or 4
    ::close(out_pipe[1]);
    const int fd = ::open(events.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 3);
    // info: a log line per step, so a closed output pipe is written to at once.
    ::execl(DYT_TRAIN_BIN, DYT_TRAIN_BIN, "--config", cfg.c_str(), "--events-fd", "3",
            "--log-level", output_reader_gone ? "info" : "warn", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  int status = 0;
  bool exited = false;
  struct KillOnReturn {  // an assertion that returns early leaves no trainer running
    pid_t pid;
    const bool& exited;
    ~KillOnReturn() {
      if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } guard{pid, exited};
  // Until it has taken n steps (false if it exited or 60 s passed first).
  auto wait_steps = [&](size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (StepLosses(events).size() < n && std::chrono::steady_clock::now() < deadline) {
      exited = ::waitpid(pid, &status, WNOHANG) == pid;
      if (exited) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return StepLosses(events).size() >= n;
  };
  auto how_it_ended = [&] {
    if (!exited) return std::string("still running");
    return WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                               : "exited " + std::to_string(WEXITSTATUS(status));
  };
  // Until it is really training (a few step events); then, for a closed output, until it has
  // logged two more steps into it. Then ask it to stop.
  ASSERT_TRUE(wait_steps(3)) << "dyt-train never started stepping: " << how_it_ended();
  ::close(out_pipe[0]);
  if (output_reader_gone) {
    const size_t before = StepLosses(events).size();
    ASSERT_TRUE(wait_steps(before + 2))
        << "dyt-train stopped stepping once its output closed: " << how_it_ended();
  }
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  for (int i = 0; i < 600 && !exited; ++i) {  // at most 30 s
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!exited) ::kill(pid, SIGKILL);
  ASSERT_TRUE(exited) << "dyt-train did not exit within 30 s of SIGTERM";
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 3) << "the preempted-resumable exit code";

  const auto losses = StepLosses(events);
  const int64_t last_step = losses.rbegin()->first;
  auto ckpt = FindLatestGood((dir_ / name / "ckpt").string(), nullptr);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->state.step, last_step) << "the checkpoint holds the last finished step";

  // It resumes from there.
  ASSERT_EQ(RunDytTrain({"--config", cfg, "--resume", "auto", "--stop-at-step",
                         std::to_string(last_step + 2)},
                        events),
            0);
  const auto after = StepLosses(events);
  EXPECT_EQ(after.rbegin()->first, last_step + 2);
}

// A long step (many micro-batches) is abandoned at the next micro-batch after SIGTERM: the
// checkpoint is the last whole step, with the data position at its end (the abandoned step's
// batches are given back), the same state as a run that stopped there on purpose; resuming from
// it gives the straight run's losses.
TEST_F(ResumeTest, SigtermMidStepAbandonsTheStepAndSavesTheLastWholeOne) {
  auto config = [&](const std::string& name) {
    const fs::path run = dir_ / name;
    fs::create_directories(run);
    std::ofstream(run / "job.yaml")
        << "model: {preset: test}\n"
        << "data: {train_paths: " << (dir_ / "train.bin").string() << ", seed: 5}\n"
        << "train: {steps: 3, batch_size: 3, grad_accum: 4000, log_every: 1, threads: 1}\n"
        << "optimizer: {lr: 0.003, warmup_steps: 1}\n"
        << "checkpoint: {dir: " << (run / "ckpt").string() << "}\n";
    return (run / "job.yaml").string();
  };
  const std::string straight_events = (dir_ / "straight.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", config("straight")}, straight_events), 0);
  const auto straight = StepLosses(straight_events);
  ASSERT_EQ(straight.size(), 3u);
  const std::string paused_events = (dir_ / "paused.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", config("paused"), "--stop-at-step", "1"}, paused_events), 0);
  auto paused = FindLatestGood((dir_ / "paused" / "ckpt").string(), nullptr);
  ASSERT_TRUE(paused.ok()) << paused.status().ToString();

  const std::string cfg = config("stopped");
  const std::string err = (dir_ / "stopped.err").string();
  const pid_t pid = ::dyt::testing::SpawnWithOutput({DYT_TRAIN_BIN, "--config", cfg}, {},
                                                    (dir_ / "stopped.out").string(), err);
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (::dyt::testing::ReadText(err).find("step 1/3 loss") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::dyt::testing::StopProcess(pid), 3) << ::dyt::testing::ReadText(err);
  EXPECT_NE(::dyt::testing::ReadText(err).find("abandoned step 2 after "), std::string::npos)
      << ::dyt::testing::ReadText(err);
  auto got = FindLatestGood((dir_ / "stopped" / "ckpt").string(), nullptr);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->state.step, 1);
  ExpectSameState(got->state, paused->state);

  const std::string resumed_events = (dir_ / "resumed.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", cfg, "--resume", "auto"}, resumed_events), 0);
  const auto resumed = StepLosses(resumed_events);
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_EQ(resumed.at(2), straight.at(2));
  EXPECT_EQ(resumed.at(3), straight.at(3));

  // Stopped inside the first step: nothing was trained, so nothing is saved (it wrote an
  // untrained step-0 checkpoint), and a resume starts fresh.
  const std::string early_cfg = config("early");
  const std::string early_err = (dir_ / "early.err").string();
  const pid_t early = ::dyt::testing::SpawnWithOutput({DYT_TRAIN_BIN, "--config", early_cfg}, {},
                                                      (dir_ / "early.out").string(), early_err);
  ASSERT_GT(early, 0);
  while (::dyt::testing::ReadText(early_err).find("train: steps 0..3") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::dyt::testing::StopProcess(early), 3) << ::dyt::testing::ReadText(early_err);
  EXPECT_NE(::dyt::testing::ReadText(early_err).find("abandoned step 1 after "), std::string::npos)
      << ::dyt::testing::ReadText(early_err);
  auto none = FindLatestGood((dir_ / "early" / "ckpt").string(), nullptr);
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound) << none.status().ToString();
}

// tokens_seen counts what each step really consumed: a run resumed with a bigger batch does not
// recount the earlier steps at the new size.
TEST_F(ResumeTest, TokensSeenCountsEachStepAtItsOwnBatchSize) {
  const std::string cfg = Config("grow", 4);
  const std::string events = (dir_ / "grow.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", cfg, "--stop-at-step", "2"}, events), 0);
  std::string yaml = ::dyt::testing::ReadText(cfg);
  const std::string from = "batch_size: 3", to = "batch_size: 6";
  ASSERT_NE(yaml.find(from), std::string::npos);
  yaml.replace(yaml.find(from), from.size(), to);
  std::ofstream(cfg) << yaml;
  ASSERT_EQ(RunDytTrain({"--config", cfg, "--resume", "auto"}, events), 0);
  auto got = FindLatestGood((dir_ / "grow" / "ckpt").string(), nullptr);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->state.step, 4);
  // grad_accum 2, the test preset's sequence length on one rank.
  const int64_t seq = ModelPreset("test")->max_seq_len;
  EXPECT_EQ(got->state.tokens_seen, 2 * (3 * 2 * seq) + 2 * (6 * 2 * seq));
}

// checkpoint.init_weights_only, a fine-tune from another run's checkpoint: the parameters of
// init_from and nothing else. After its first step the run holds what one AdamW step from those
// parameters with zero moments gives: step 1, a fresh run's data position, m^2/v equal to
// (1 - beta1)^2 / (1 - beta2) in every element, parameters within one learning rate of
// init_from's; and on that first batch (a fresh run's first batch) its loss is the trained
// model's, below the fresh run's. max_seq_len may differ; a width may not.
TEST_F(ResumeTest, InitWeightsOnlyTakesTheWeightsAndStartsAfresh) {
  const auto edit = [](const std::string& cfg, const std::string& from, const std::string& to) {
    std::string yaml = ::dyt::testing::ReadText(cfg);
    ASSERT_NE(yaml.find(from), std::string::npos) << from;
    yaml.replace(yaml.find(from), from.size(), to);
    std::ofstream(cfg) << yaml;
  };
  const std::string base_events = (dir_ / "base.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", Config("base", 12)}, base_events), 0);
  const std::string init = (dir_ / "base" / "ckpt" / "step-00000012").string();
  auto base = LoadCheckpoint(init, nullptr);
  ASSERT_TRUE(base.ok()) << base.status().ToString();

  const std::string fresh_events = (dir_ / "fresh.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", Config("fresh", 4), "--stop-at-step", "1"}, fresh_events), 0);
  auto fresh = LoadCheckpoint((dir_ / "fresh" / "ckpt" / "step-00000001").string(), nullptr);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();

  const std::string tune = Config("tune", 4);
  edit(tune, "model: {preset: test}", "model: {preset: test, max_seq_len: 32}");
  edit(tune, "log_every: 1,",
       "log_every: 1, seq_len: " + std::to_string(ModelPreset("test")->max_seq_len) + ",");
  edit(tune, "keep_last: 2}", "keep_last: 2, init_from: " + init + ", init_weights_only: true}");
  const std::string tune_events = (dir_ / "tune.jsonl").string();
  ASSERT_EQ(RunDytTrain({"--config", tune, "--resume", "auto", "--stop-at-step", "1"}, tune_events),
            0);
  auto tuned = LoadCheckpoint((dir_ / "tune" / "ckpt" / "step-00000001").string(), nullptr);
  ASSERT_TRUE(tuned.ok()) << tuned.status().ToString();
  EXPECT_EQ(tuned->step, 1);
  EXPECT_EQ(tuned->adam_step, 1);
  EXPECT_EQ(tuned->loader, fresh->loader);
  EXPECT_EQ(tuned->tokens_seen, fresh->tokens_seen);
  const AdamWConfig adamw;
  const double ratio = double(1 - adamw.beta1) * (1 - adamw.beta1) / (1 - adamw.beta2);
  const float lr = 0.003f;  // Config's optimizer.lr, the most one AdamW step moves a weight
  size_t moved = 0, checked = 0;
  for (size_t i = 0; i < tuned->params.size(); ++i) {
    const double m = tuned->adam_m[i], v = tuned->adam_v[i];
    if (v > 1e-30) {
      ++checked;
      ASSERT_NEAR(m * m / v, ratio, 1e-4 * ratio) << "element " << i;
    }
    const float step = std::fabs(tuned->params[i] - base->params[i]);
    ASSERT_LE(step, lr * 1.01f) << "element " << i;
    moved += step > 0;
  }
  EXPECT_GT(checked, tuned->params.size() / 2);
  EXPECT_GT(moved, tuned->params.size() / 2);
  const auto tune_losses = StepLosses(tune_events), fresh_losses = StepLosses(fresh_events);
  EXPECT_LT(tune_losses.at(1), fresh_losses.at(1) - 0.05)
      << "the first batch is the same: the trained weights must do better on it; base "
      << StepLosses(base_events).at(1) << " -> " << StepLosses(base_events).at(12);
  EXPECT_NE(::dyt::testing::ReadText(tune_events).find("\"from_step\":12"), std::string::npos)
      << "an initialized event naming the step the weights came from";

  // Its own checkpoint wins from now on: the run goes on from step 1 to its end.
  ASSERT_EQ(RunDytTrain({"--config", tune, "--resume", "auto"}, tune_events), 0);
  EXPECT_EQ(StepLosses(tune_events).size(), 4u);
  const std::string all = ::dyt::testing::ReadText(tune_events);
  EXPECT_EQ(all.find("\"initialized\""), all.rfind("\"initialized\"")) << "initialized once";
  EXPECT_NE(all.find("\"resumed\""), std::string::npos) << all;

  // A tensor of another shape cannot take these weights: exit 2, naming the field.
  const std::string wide = Config("wide", 4);
  edit(wide, "model: {preset: test}", "model: {preset: test, dim: 64}");
  edit(wide, "keep_last: 2}", "keep_last: 2, init_from: " + init + ", init_weights_only: true}");
  EXPECT_EQ(RunDytTrain({"--config", wide, "--resume", "auto"}, (dir_ / "wide.jsonl").string()), 2);
  const std::string wide_events = ::dyt::testing::ReadText((dir_ / "wide.jsonl").string());
  EXPECT_NE(wide_events.find("dim (checkpoint 32"), std::string::npos) << wide_events;
  EXPECT_NE(wide_events.find("the model must have its tensor shapes"), std::string::npos)
      << wide_events;
  EXPECT_EQ(wide_events.find("resume with the config that saved it"), std::string::npos)
      << wide_events;
}

TEST_F(ResumeTest, SigtermSavesACheckpointAndExitsWithThePreemptedCode) {
  ExpectSigtermCheckpoints("sigterm", /*output_reader_gone=*/false);
}

TEST_F(ResumeTest, SigtermAfterItsOutputReaderDiedStillSavesACheckpoint) {
  ExpectSigtermCheckpoints("orphan", /*output_reader_gone=*/true);
}

}  // namespace
}  // namespace dyt

namespace dyt {
namespace {

TEST(CheckpointTriggerTest, EveryMinutesAndEveryStepsSaveWhereDue) {
  const fs::path dir = fs::temp_directory_path() / ("dyt_trigger_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const auto& [trigger, want] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           // A time budget already spent after every step: a checkpoint after each one.
           {"every_minutes: 0.0000001", {1, 2, 3, 4, 5}},
           // Every 2 steps, plus the final step.
           {"every_steps: 2", {2, 4, 5}},
       }) {
    fs::remove_all(dir);
    auto node = LoadYamlString(
        "model: {preset: test}\ndata: {synthetic: true}\n"
        "train: {steps: 5, batch_size: 2, threads: 1}\n"
        "checkpoint: {dir: " +
        dir.string() + ", keep_last: 10, " + trigger + "}\n");
    ASSERT_TRUE(node.ok());
    auto cfg = ParseTrainConfig(*node);
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    auto t = Trainer::Create(*cfg, nullptr);
    ASSERT_TRUE(t.ok());
    auto outcome = (*t)->Run(nullptr);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    auto list = ListCheckpoints(dir.string());
    ASSERT_TRUE(list.ok());
    std::vector<int64_t> steps;
    for (const auto& c : *list) steps.insert(steps.begin(), c.step);  // listed newest first
    EXPECT_EQ(steps, want) << trigger;
  }
  fs::remove_all(dir);
}

// Two ranks in one process (threads, Gloo over a directory store), each with its own
// checkpoint store, as ranks on different machines have: `--resume auto` must follow rank 0's
// choice, and a rank that cannot load it makes every rank fail instead of some resuming and
// others starting fresh (unlike collectives would then pair up and hang).
class RankResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dyt_rank_resume_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void ExpectSigtermCheckpoints(const std::string& name, bool output_reader_gone);

  TrainConfig ConfigWithStore(const fs::path& store, int64_t steps,
                              const std::string& model = "{preset: test}") {
    auto node = LoadYamlString("model: " + model +
                               "\ndata: {synthetic: true}\n"
                               "train: {steps: " +
                               std::to_string(steps) +
                               ", batch_size: 2, threads: 1}\n"
                               "checkpoint: {dir: " +
                               store.string() + ", keep_last: 10, every_steps: 2}\n");
    EXPECT_TRUE(node.ok());
    auto cfg = ParseTrainConfig(*node);
    EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
    return cfg.ok() ? *cfg : TrainConfig{};
  }

  // A one-process run of `steps` steps writing checkpoints at every 2nd step into `store`.
  void MakeStore(const fs::path& store, int64_t steps,
                 const std::string& model = "{preset: test}") {
    auto t = Trainer::Create(ConfigWithStore(store, steps, model), nullptr);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    auto outcome = (*t)->Run(nullptr);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  }

  struct RankResult {
    Status status = Status::Ok();
    int64_t step = -1;  // after Resume
  };

  // Both ranks: create a trainer on their store, then Resume("auto").
  std::vector<RankResult> ResumeOnTwoRanks(const fs::path& store0, const fs::path& store1,
                                           const std::string& attempt) {
    std::vector<RankResult> out(2);
    std::vector<std::thread> threads;
    const fs::path rdzv = dir_ / ("rdzv-" + attempt);
    fs::create_directories(rdzv);
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&, r] {
        dist::DistEnv env;
        env.rank = r;
        env.world_size = 2;
        env.rdzv = rdzv.string();
        env.job = attempt;
        env.timeout = std::chrono::seconds(60);
        auto comm = dist::MakeHostCommunicator(env);
        if (!comm.ok()) {
          out[size_t(r)].status = comm.status();
          return;
        }
        auto t =
            Trainer::Create(ConfigWithStore(r == 0 ? store0 : store1, 8), nullptr, comm->get());
        if (!t.ok()) {
          out[size_t(r)].status = t.status();
          return;
        }
        out[size_t(r)].status = (*t)->Resume("auto");
        out[size_t(r)].step = (*t)->step();
      });
    }
    for (auto& t : threads) t.join();
    return out;
  }

  fs::path dir_;
};

TEST_F(RankResumeTest, RanksFollowRankZerosChoiceOrFailTogether) {
  const fs::path four = dir_ / "four", six = dir_ / "six", empty = dir_ / "empty";
  MakeStore(four, 4);  // step-2, step-4
  MakeStore(six, 6);   // step-2, step-4, step-6 (same run: its step 4 equals four's)

  // Rank 1 sees a newer checkpoint than rank 0: both resume from rank 0's step 4.
  auto r = ResumeOnTwoRanks(four, six, "newer-on-rank-1");
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(r[size_t(i)].status.ok()) << "rank " << i << ": " << r[size_t(i)].status.ToString();
    EXPECT_EQ(r[size_t(i)].step, 4) << "rank " << i;
  }

  // Rank 0 picks step 6, which rank 1's store lacks: every rank fails, and says why.
  r = ResumeOnTwoRanks(six, four, "missing-on-rank-1");
  EXPECT_EQ(r[0].status.code(), StatusCode::kFailedPrecondition) << r[0].status.ToString();
  EXPECT_NE(r[0].status.message().find("1 of 2 ranks could not load"), std::string::npos)
      << r[0].status.ToString();
  EXPECT_FALSE(r[1].status.ok());
  EXPECT_NE(r[1].status.message().find("rank 1 loading rank 0's choice, step 6"), std::string::npos)
      << r[1].status.ToString();
  EXPECT_EQ(r[0].step, 0) << "rank 0 must not have restored";

  // Rank 0's store holds only another model's checkpoint (intact but unusable: an error, not a
  // fresh start): rank 0 reports why, rank 1 that rank 0 found nothing usable; nobody resumes.
  const fs::path other = dir_ / "other-model";
  MakeStore(other, 2, "{preset: test, n_layers: 1}");
  // That is the config's fault (another model): INVALID_ARGUMENT on every rank, so no rank's
  // exit asks for a retry.
  r = ResumeOnTwoRanks(other, six, "unusable-on-rank-0");
  EXPECT_EQ(r[0].status.code(), StatusCode::kInvalidArgument) << r[0].status.ToString();
  EXPECT_NE(r[0].status.message().find("model config differs"), std::string::npos)
      << r[0].status.ToString();
  EXPECT_EQ(r[1].status.code(), StatusCode::kInvalidArgument) << r[1].status.ToString();
  EXPECT_NE(r[1].status.message().find("rank 0's newest checkpoint cannot be continued with this "
                                       "config"),
            std::string::npos)
      << r[1].status.ToString();
  EXPECT_EQ(r[1].step, 0);

  // Rank 0's checkpoints are all damaged: a failure (it may be transient), not the config's.
  const fs::path damaged = dir_ / "damaged";
  MakeStore(damaged, 4);
  for (const char* step : {"step-00000002", "step-00000004"}) {
    std::ofstream(damaged / step / "state.json", std::ios::app) << " ";
  }
  r = ResumeOnTwoRanks(damaged, six, "damaged-on-rank-0");
  EXPECT_EQ(r[0].status.code(), StatusCode::kDataLoss) << r[0].status.ToString();
  EXPECT_EQ(r[1].status.code(), StatusCode::kFailedPrecondition) << r[1].status.ToString();
  EXPECT_NE(r[1].status.message().find("rank 0 found no usable checkpoint"), std::string::npos)
      << r[1].status.ToString();
  EXPECT_EQ(r[0].step, 0);
  EXPECT_EQ(r[1].step, 0);

  // Rank 0 has nothing: both start fresh, even though rank 1's store has checkpoints.
  fs::create_directories(empty);
  r = ResumeOnTwoRanks(empty, six, "fresh-on-rank-0");
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(r[size_t(i)].status.ok()) << "rank " << i << ": " << r[size_t(i)].status.ToString();
    EXPECT_EQ(r[size_t(i)].step, 0) << "rank " << i;
  }
}

}  // namespace
}  // namespace dyt
