// The real dyt-train binary refuses, at its start and with exit 2 and a message naming what is
// wrong, what it would otherwise find out late or by crashing: command-line mistakes, configs
// that are no config file, values that would break training, validation data it cannot
// evaluate on, a checkpoint store it cannot write or that holds another run, and an unusable
// DYT_DIST_HOST, a checkpoint the config cannot continue. A stop with nothing saved is not
// reported as resumable (exit 3).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/process.h"
#include "tests/common/temp_dir.h"
#include "trainer/data/shard_writer.h"

namespace dyt {
namespace {

using ::dyt::testing::ProcessResult;
using ::dyt::testing::ReadText;
using ::dyt::testing::SpawnWithOutput;
using ::dyt::testing::StopProcess;
using ::dyt::testing::TempDir;

class TrainBinaryTest : public ::testing::Test {
 protected:
  // Writes `yaml` as <name>.yaml in the test's directory; its path.
  std::string Config(const std::string& name, const std::string& yaml) {
    const std::string path = dir_.Join(name + ".yaml");
    std::ofstream(path) << yaml;
    return path;
  }
  // A synthetic `test`-preset config with these train fields, then `more` sections.
  static std::string Synthetic(const std::string& train = "steps: 3, batch_size: 2, seq_len: 8",
                               const std::string& more = "") {
    return "model: {preset: test}\ndata: {synthetic: true}\ntrain: {" + train + "}\n" + more;
  }
  ProcessResult Train(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), DYT_TRAIN_BIN);
    return ::dyt::testing::Run(args, env, std::chrono::seconds(120));
  }

  TempDir dir_;
};

TEST_F(TrainBinaryTest, CommandLineMistakesExitTwoNamingTheOption) {
  const std::string ok = Config("ok", Synthetic());
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--config", ok, "--steps", "abc"}, "--steps"},
      {{"--config", ok, "--steps", "0"}, "--steps"},
      {{"--config", ok, "--threads", "-3"}, "--threads"},
      {{"--config", ok, "--stop-at-step", "-1"}, "--stop-at-step"},
      {{"--config", ok, "--log-level", "nonsense"}, "--log-level"},
      {{"--config", ok, "--events-fd", "999"}, "file descriptor 999 is not open"},
      {{"--config", ok, "--bogus"}, "--bogus"},
      {{}, "--config is required"},
  };
  for (const auto& [args, says] : cases) {
    ProcessResult r = Train(args);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << ::testing::PrintToString(args) << "\n"
                                                   << r.err;
  }
}

TEST_F(TrainBinaryTest, ConfigsThatCannotBeTrainedExitTwoAtStart) {
  std::filesystem::create_directories(dir_.Join("a-dir.yaml"));
  const std::pair<std::string, std::string> cases[] = {
      {"/dev/zero", "/dev/zero: not a regular file"},
      {dir_.Join("a-dir.yaml"), "not a regular file"},
      {Config("dup",
              "model: {preset: test}\ndata: {synthetic: true}\n"
              "train: {steps: 3, steps: 5, batch_size: 2}\n"),
       "train.steps: given twice"},
      {Config("wd", Synthetic("steps: 3, batch_size: 2", "optimizer: {weight_decay: .inf}\n")),
       "optimizer.weight_decay: must be in [0, 10] (got inf)"},
      {Config("eps", Synthetic("steps: 3, batch_size: 2", "optimizer: {eps: .inf}\n")),
       "optimizer.eps: must be in (0, 1] (got inf)"},
      {Config("threads", Synthetic("steps: 3, batch_size: 2, threads: 100000")),
       "train.threads: must be in [0, 1024] (got 100000)"},
      {Config("seed", Synthetic("steps: 3, batch_size: 2, seed: -5")),
       "train.seed: must be >= 0 (got -5)"},
      {Config("int", Synthetic("steps: -1, batch_size: 2")), "train.steps: must be >= 1 (got -1)"},
      // More than any machine holds: refused with the sizes, not std::bad_alloc mid-way.
      {Config("huge",
              "model: {preset: test, dim: 65536, n_layers: 64, ffn_dim: 131072}\n"
              "data: {synthetic: true}\ntrain: {steps: 3, batch_size: 2}\n"),
       "parameters need"},
  };
  for (const auto& [config, says] : cases) {
    ProcessResult r = Train({"--config", config});
    EXPECT_EQ(r.code, 2) << config << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << config << "\n" << r.err;
  }
}

// Found before the first step, not at the first evaluation or save after hours of training.
TEST_F(TrainBinaryTest, MissingValidationDataAndAnUnwritableStoreAreFoundBeforeTraining) {
  // Synthetic data has validation batches: evaluating on it is fine.
  const std::string synthetic_eval =
      Config("synthetic", Synthetic("steps: 3, batch_size: 2, seq_len: 8, eval_every: 2"));
  ProcessResult ok = Train({"--config", synthetic_eval});
  ASSERT_EQ(ok.code, 0) << ok.err;
  // Shards without val_paths have none.
  const std::string shard = dir_.Join("train.bin");
  std::vector<int32_t> tokens(4000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(i % 50);
  ASSERT_TRUE(WriteShard(shard, tokens, 96, "").ok());
  const std::string shards_no_val =
      Config("shards", "model: {preset: test}\ndata: {train_paths: " + shard +
                           "}\ntrain: {steps: 50, batch_size: 2, seq_len: 8, eval_every: 10}\n");
  ProcessResult r = Train({"--config", shards_no_val});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("train.eval_every: 10 evaluates on batches of train.batch_size (2) "
                       "validation windows per rank, and this rank has 0: set data.val_paths"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("step 1/"), std::string::npos) << "it trained first:\n" << r.err;

  // A checkpoint store under a regular file cannot be created.
  const std::string bad_store =
      Config("store", Synthetic("steps: 3, batch_size: 2, seq_len: 8",
                                "checkpoint: {dir: " + shard + "/checkpoints}\n"));
  r = Train({"--config", bad_store});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("checkpoint.dir " + shard + "/checkpoints: cannot create the directory"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("step 1/"), std::string::npos) << "it trained first:\n" << r.err;
}

// A fresh run into a store holding another run's checkpoints would mix the two; --resume auto
// continues it instead.
TEST_F(TrainBinaryTest, AFreshRunIntoAUsedStoreIsRefused) {
  const std::string store = dir_.Join("ckpt");
  const std::string config =
      Config("run", Synthetic("steps: 4, batch_size: 2, seq_len: 8",
                              "checkpoint: {dir: " + store + ", every_steps: 2}\n"));
  ProcessResult first = Train({"--config", config});
  ASSERT_EQ(first.code, 0) << first.err;
  ProcessResult again = Train({"--config", config, "--steps", "6"});
  EXPECT_EQ(again.code, 2) << again.err;
  EXPECT_NE(again.err.find("checkpoint.dir " + store +
                           " holds checkpoints of an earlier run (newest: step 4): --resume "
                           "auto continues it"),
            std::string::npos)
      << again.err;
  ProcessResult resumed = Train({"--config", config, "--steps", "6", "--resume", "auto"});
  EXPECT_EQ(resumed.code, 0) << resumed.err;
}

// --resume DIR of another store goes on only into an empty store (it wrote among the store's
// own checkpoints and moved `latest` back); a checkpoint of the store itself may be resumed
// into it (going back to an earlier step).
TEST_F(TrainBinaryTest, AnotherStoresCheckpointIsResumedOnlyIntoAnEmptyStore) {
  auto run = [&](const std::string& name, int steps) {
    return Config(name, Synthetic("steps: " + std::to_string(steps) + ", batch_size: 2, seq_len: 8",
                                  "checkpoint: {dir: " + dir_.Join(name) + ", every_steps: 2}\n"));
  };
  const std::string a = run("a", 4), b = run("b", 6);
  ASSERT_EQ(Train({"--config", a}).code, 0);
  ASSERT_EQ(Train({"--config", b}).code, 0);
  const std::string from = dir_.Join("a") + "/step-00000002";
  ProcessResult mixed = Train({"--config", b, "--resume", from});
  EXPECT_EQ(mixed.code, 2) << mixed.err;
  EXPECT_NE(mixed.err.find("checkpoint.dir " + dir_.Join("b") +
                           " holds checkpoints of a run (newest: step 6); going on from " + from +
                           ", of another store, there would mix two runs"),
            std::string::npos)
      << mixed.err;
  EXPECT_EQ(ReadText(dir_.Join("b") + "/latest"), "step-00000006\n");
  ProcessResult fresh = Train({"--config", run("c", 4), "--resume", from});
  EXPECT_EQ(fresh.code, 0) << fresh.err;
  EXPECT_EQ(ReadText(dir_.Join("c") + "/latest"), "step-00000004\n");
  ProcessResult back = Train({"--config", a, "--resume", from + "/"});
  EXPECT_EQ(back.code, 0) << back.err;
  ProcessResult store = Train({"--config", run("d", 4), "--resume", dir_.Join("a")});
  EXPECT_EQ(store.code, 2) << store.err;
  EXPECT_NE(store.err.find("--resume " + dir_.Join("a") +
                           ": is a checkpoint store; --resume takes one of its step-XXXXXXXX "
                           "directories"),
            std::string::npos)
      << store.err;
}

// Exit 3 promises a checkpoint to resume from; a run with no store has none to offer.
TEST_F(TrainBinaryTest, AStopWithNoCheckpointDirIsNotResumable) {
  const std::string config = Config("long", Synthetic("steps: 1000000, batch_size: 2, seq_len: 8"));
  const pid_t pid =
      SpawnWithOutput({DYT_TRAIN_BIN, "--config", config}, {}, dir_.Join("out"), dir_.Join("err"));
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ReadText(dir_.Join("err")).find("step 1/") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(StopProcess(pid), 1) << ReadText(dir_.Join("err"));
  EXPECT_NE(ReadText(dir_.Join("err")).find("with nothing saved (no checkpoint.dir or output.dir)"),
            std::string::npos)
      << ReadText(dir_.Join("err"));
}

// Gloo crashed (SIGSEGV) on a host name that does not resolve.
TEST_F(TrainBinaryTest, AnUnusableDistHostIsAConfigurationError) {
  const std::string config = Config("dist", Synthetic());
  std::filesystem::create_directories(dir_.Join("rdzv"));
  ProcessResult r =
      Train({"--config", config},
            {"DYT_DIST_HOST=nosuchhost.invalid", "DYT_RANK=0", "DYT_WORLD_SIZE=2",
             "DYT_RDZV=" + dir_.Join("rdzv"), "DYT_RDZV_ID=x", "DYT_DIST_TIMEOUT_S=5"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("DYT_DIST_HOST 'nosuchhost.invalid': neither a network interface of this "
                       "machine nor a host name that resolves"),
            std::string::npos)
      << r.err;
}

// A checkpoint that this config cannot continue is the config's fault, not a failure to retry:
// exit 2, naming what differs. The same store resumes with the config that made it.
TEST_F(TrainBinaryTest, AResumeTheConfigCannotContinueExitsTwoNamingWhatDiffers) {
  std::vector<int32_t> tokens(4000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(i * 7 % 96);
  const std::string id_a(64, 'a'), id_b(64, 'b');
  ASSERT_TRUE(WriteShard(dir_.Join("a.bin"), tokens, 96, id_a).ok());
  ASSERT_TRUE(WriteShard(dir_.Join("b.bin"), tokens, 96, id_b).ok());
  const std::string store = dir_.Join("ckpt");
  auto config = [&](const std::string& name, const std::string& model, const std::string& data) {
    return Config(name, "model: " + model + "\ndata: {train_paths: " + dir_.Join(data) +
                            "}\ntrain: {steps: 4, batch_size: 2, seq_len: 8}\n"
                            "checkpoint: {dir: " +
                            store + ", every_steps: 2}\n");
  };
  ProcessResult first = Train({"--config", config("a", "{preset: test}", "a.bin"), "--steps", "2"});
  ASSERT_EQ(first.code, 0) << first.err;

  ProcessResult other_data =
      Train({"--config", config("b", "{preset: test}", "b.bin"), "--resume", "auto"});
  EXPECT_EQ(other_data.code, 2) << other_data.err;
  EXPECT_NE(other_data.err.find("tokenizer mismatch: the checkpoint at step 2 was trained on data "
                                "of tokenizer " +
                                id_a + ", the configured data is of tokenizer " + id_b +
                                "; this config cannot continue it"),
            std::string::npos)
      << other_data.err;

  ProcessResult other_model =
      Train({"--config", config("small", "{preset: test, n_layers: 1}", "a.bin"), "--resume",
             dir_.Join("ckpt/step-00000002")});
  EXPECT_EQ(other_model.code, 2) << other_model.err;
  EXPECT_NE(other_model.err.find("model config differs from the expected one"), std::string::npos)
      << other_model.err;
  EXPECT_NE(other_model.err.find("n_layers"), std::string::npos) << other_model.err;

  ProcessResult same =
      Train({"--config", config("a", "{preset: test}", "a.bin"), "--resume", "auto"});
  EXPECT_EQ(same.code, 0) << same.err;
  EXPECT_NE(same.err.find("resumed from " + store + "/step-00000002 at step 2"), std::string::npos)
      << same.err;
}

// Attempt fencing: once a later scheduler attempt has claimed the store, an earlier attempt
// still running (its worker was taken for lost but lived on) saves and prunes nothing there;
// the later attempt's checkpoints and `latest` stay as it left them.
TEST_F(TrainBinaryTest, AnAttemptSupersededByALaterOneWritesNoCheckpoint) {
  const std::string store = dir_.Join("ckpt");
  auto config = [&](int attempt) {
    return Config(
        "attempt" + std::to_string(attempt),
        Synthetic("steps: 4, batch_size: 2, seq_len: 8", "checkpoint: {dir: " + store +
                                                             ", every_steps: 1, keep_last: 1}\n"
                                                             "job_attempt: " +
                                                             std::to_string(attempt) + "\n"));
  };
  ProcessResult second = Train({"--config", config(2), "--stop-at-step", "2", "--resume", "auto"});
  ASSERT_EQ(second.code, 0) << second.err;
  ASSERT_EQ(ReadText(store + "/latest"), "step-00000002\n");
  ProcessResult stale = Train({"--config", config(1), "--resume", "auto"});
  EXPECT_EQ(stale.code, 1) << stale.err;
  EXPECT_NE(stale.err.find("a later attempt of this job has claimed it; this attempt 1 will "
                           "not train"),
            std::string::npos)
      << stale.err;
  EXPECT_NE(stale.err.find("stopped at step 2: superseded by a later attempt"), std::string::npos)
      << stale.err;
  EXPECT_EQ(ReadText(store + "/latest"), "step-00000002\n");
  EXPECT_TRUE(std::filesystem::exists(store + "/step-00000002"));  // not pruned (keep_last 1)
  EXPECT_FALSE(std::filesystem::exists(store + "/step-00000003"));
  // A later attempt takes over and saves as usual.
  ProcessResult third = Train({"--config", config(3), "--resume", "auto"});
  EXPECT_EQ(third.code, 0) << third.err;
  EXPECT_EQ(ReadText(store + "/latest"), "step-00000004\n");
  EXPECT_EQ(ReadText(store + "/attempt"), "3\n");
}

// checkpoint.init_from: a run whose own store is empty continues another run's checkpoint
// (step, parameters, optimizer state, data position), on every rank; once it has saved its
// own, those win. Another model cannot continue it: exit 2.
TEST_F(TrainBinaryTest, AnEmptyStoreContinuesTheInitFromCheckpoint) {
  const std::string first = dir_.Join("first"), second = dir_.Join("second");
  const std::string base = "batch_size: 2, seq_len: 8, threads: 1, log_every: 1";
  ProcessResult a = Train({"--config",
                           Config("a", Synthetic("steps: 6, " + base, "checkpoint: {dir: " + first +
                                                                          ", every_steps: 3}\n")),
                           "--stop-at-step", "3"});
  ASSERT_EQ(a.code, 0) << a.err;
  const std::string init = first + "/step-00000003";
  ASSERT_TRUE(std::filesystem::exists(init));
  const std::string b_config = Config(
      "b", Synthetic("steps: 6, " + base, "checkpoint: {dir: " + second +
                                              ", every_steps: 3, init_from: " + init + "}\n"));
  // Two ranks, so the others load the same checkpoint rank 0 chose.
  ProcessResult b = ::dyt::testing::Run({DYT_LAUNCH_BIN, "--nproc", "2", "--timeout-s", "30", "--",
                                         DYT_TRAIN_BIN, "--config", b_config, "--resume", "auto"},
                                        {}, std::chrono::seconds(120));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("continuing " + init + " (checkpoint.init_from)"), std::string::npos)
      << b.err;
  EXPECT_NE(b.err.find("resumed from " + init + " at step 3"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find("step 1/6"), std::string::npos) << b.err;  // not from the start
  EXPECT_EQ(ReadText(second + "/latest"), "step-00000006\n");
  EXPECT_EQ(ReadText(first + "/latest"), "step-00000003\n");  // the other store untouched
  // Its own checkpoints win over init_from from now on.
  ProcessResult again = Train({"--config", b_config, "--resume", "auto", "--steps", "7"});
  EXPECT_NE(again.err.find("resumed from " + second + "/step-00000006 at step 6"),
            std::string::npos)
      << again.err;
  // Fewer steps than it has: nothing to train, and it says so.
  ProcessResult done = Train({"--config", b_config, "--resume", "auto", "--steps", "3"});
  EXPECT_EQ(done.code, 0) << done.err;
  EXPECT_NE(done.err.find("resumed at step 7, train.steps is 3: nothing left to train"),
            std::string::npos)
      << done.err;
  // Another model: refused, naming what differs.
  ProcessResult other = Train(
      {"--config",
       Config("c", "model: {preset: test, dim: 64}\ndata: {synthetic: true}\ntrain: {steps: 6, " +
                       base + "}\ncheckpoint: {dir: " + dir_.Join("third") +
                       ", init_from: " + init + "}\n"),
       "--resume", "auto"});
  EXPECT_EQ(other.code, 2) << other.err;
}

// dyt-launch --nproc 1 runs the trainer as one process (scripts pass N through, N may be 1).
TEST_F(TrainBinaryTest, OneRankUnderTheLauncherTrains) {
  ProcessResult r = ::dyt::testing::Run(
      {DYT_LAUNCH_BIN, "--nproc", "1", "--", DYT_TRAIN_BIN, "--config", Config("one", Synthetic())},
      {"DYT_RDZV=/stale", "DYT_RDZV_ID=stale"}, std::chrono::seconds(120));
  EXPECT_EQ(r.code, 0) << r.err;
}

// Ranks started with different configs (one config per node of a multi-node launch) refuse to
// train, every rank exiting 2 and naming the field, instead of training different replicas,
// reading overlapping data, hanging in a collective or aborting inside Gloo (a model of another
// size made Gloo's transport thread throw, killing rank 0 with SIGABRT).
TEST_F(TrainBinaryTest, RanksStartedWithDifferentConfigsRefuseToTrain) {
  const std::string base = "steps: 3, batch_size: 2, seq_len: 8, threads: 1";
  Config("rank0", Synthetic(base));
  const std::pair<std::string, std::string> cases[] = {
      {Synthetic("steps: 3, batch_size: 4, seq_len: 8, threads: 1"),
       "rank 1 was started with another config than rank 0: train.batch_size is 4 there, 2 on "
       "rank 0 (1 of 2 ranks differ"},
      {"model: {preset: test, dim: 64}\ndata: {synthetic: true}\ntrain: {" + base + "}\n",
       "rank 1 was started with another config than rank 0: model.dim is 64 there, 32 on rank 0"},
      {Synthetic(base, "optimizer: {lr: 0.01}\n"), "optimizer.lr is 0.0099999997764825821 there"},
  };
  for (const auto& [other, says] : cases) {
    Config("rank1", other);
    // Each rank picks its config by DYT_RANK, as each node of a multi-node launch would.
    ProcessResult r = ::dyt::testing::Run(
        {DYT_LAUNCH_BIN, "--nproc", "2", "--timeout-s", "30", "--", "/bin/sh", "-c",
         std::string("exec ") + DYT_TRAIN_BIN + " --config " + dir_.Join("rank") +
             "$DYT_RANK.yaml"},
        {}, std::chrono::seconds(120));
    EXPECT_EQ(r.code, 2) << says << "\n" << r.err;
    // Both ranks say it (dyt-launch passes their stderr through).
    const size_t first = r.err.find(says);
    ASSERT_NE(first, std::string::npos) << r.err;
    EXPECT_NE(r.err.find(says, first + 1), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Aborted"), std::string::npos) << r.err;
  }
  // The same config on both ranks trains (threads may differ: not compared).
  Config("rank1", Synthetic("steps: 3, batch_size: 2, seq_len: 8, threads: 2"));
  ProcessResult same = ::dyt::testing::Run(
      {DYT_LAUNCH_BIN, "--nproc", "2", "--timeout-s", "30", "--", "/bin/sh", "-c",
       std::string("exec ") + DYT_TRAIN_BIN + " --config " + dir_.Join("rank") + "$DYT_RANK.yaml"},
      {}, std::chrono::seconds(120));
  EXPECT_EQ(same.code, 0) << same.err;
}

// A stale attempt does not burn its slots until its worker notices: two ranks training when a
// later attempt claims the store stop together within seconds, without saving, and exit 1.
TEST_F(TrainBinaryTest, ARunningAttemptStopsSoonAfterALaterOneClaimsTheStore) {
  const std::string store = dir_.Join("ckpt");
  const std::string config =
      Config("attempt1", Synthetic("steps: 1000000, batch_size: 2, seq_len: 8, threads: 1",
                                   "checkpoint: {dir: " + store +
                                       ", every_steps: 50, keep_last: 2}\n"
                                       "job_attempt: 1\n"));
  const pid_t pid = SpawnWithOutput({DYT_LAUNCH_BIN, "--nproc", "2", "--timeout-s", "30", "--",
                                     DYT_TRAIN_BIN, "--config", config, "--resume", "auto"},
                                    {}, dir_.Join("out"), dir_.Join("err"));
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!std::filesystem::exists(store + "/latest") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(std::filesystem::exists(store + "/latest")) << ReadText(dir_.Join("err"));
  // What attempt 2 does first when it starts (attempt_fence.h).
  std::ofstream(store + "/attempt.tmp") << "2\n";
  std::filesystem::rename(store + "/attempt.tmp", store + "/attempt");
  const auto claimed = std::chrono::steady_clock::now();
  int status = 0;
  bool exited = false;
  while (!(exited = ::waitpid(pid, &status, WNOHANG) == pid) &&
         std::chrono::steady_clock::now() - claimed < std::chrono::seconds(60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - claimed).count();
  if (!exited) {
    StopProcess(pid);
    FAIL() << "still training 60 s after the claim\n" << ReadText(dir_.Join("err"));
  }
  const std::string err = ReadText(dir_.Join("err"));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << "\n" << err;
  EXPECT_LT(seconds, 20) << err;  // a check every 5 s, then one step
  EXPECT_NE(err.find("a later attempt of this job has claimed " + store +
                     " (this is attempt 1): stopping at step"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("superseded by a later attempt"), std::string::npos) << err;
  EXPECT_EQ(ReadText(store + "/attempt"), "2\n");
}

}  // namespace
}  // namespace dyt
