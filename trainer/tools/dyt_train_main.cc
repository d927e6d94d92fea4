// dyt-train: trains a LLaMA-DyT model from a YAML config.
//
//   dyt-train --config job.yaml [--resume auto|DIR] [--events-fd 3] [--steps N]
//             [--threads N] [--job-id ID] [--log-level info]
//
// Human-readable progress goes to stderr; JSON-line events (docs/trainer.md) go to the file
// descriptor given by --events-fd (the worker daemon passes a pipe). Exit codes: 0 done,
// 1 runtime failure (or a stop with no checkpoint.dir: nothing to resume), 2 invalid config or
// arguments, 3 stopped by SIGTERM/SIGINT after saving a checkpoint ("preempted, resumable": run
// again with --resume auto).
#include <fcntl.h>

#include <CLI/CLI.hpp>
#include <charconv>

#include "common/command_line.h"
#include "common/logging.h"
#include "common/signals.h"
#include "trainer/dist/make_communicator.h"
#ifdef DYT_WITH_SCHEDULER_RDZV
#include "trainer/dist/scheduler_kv_store.h"
#endif
#include "trainer/train/trainer.h"

namespace {
constexpr int kExitFailure = 1;
constexpr int kExitBadConfig = 2;
constexpr int kExitStopped = 3;
}  // namespace

static int RunTrain(int argc, char** argv);

int main(int argc, char** argv) {
  try {
    return RunTrain(argc, argv);
  } catch (const std::bad_alloc&) {
    // What CheckFitsInMemory's estimate did not foresee (or memory other processes hold).
    spdlog::error(
        "out of memory: this machine cannot hold the model and batch the config asks "
        "for (a smaller model.* or train.batch_size x train.seq_len)");
    return kExitFailure;
  }
}

static int RunTrain(int argc, char** argv) {
  // Its output and events go to a worker's pipes: if the worker dies, a log line must not kill
  // the trainer before it saves the checkpoint its SIGTERM (PR_SET_PDEATHSIG) asks for.
  dyt::IgnoreSigpipeIfDefault();
  CLI::App app{"dyt-train: pretrain a LLaMA model with Dynamic Tanh normalization"};
  std::string config_path, log_level = "info", resume = "none", job_id;
  int events_fd = -1, threads = -1;
  int64_t steps = -1;
  app.add_option("--config", config_path, "YAML training config")->required();
  app.add_option("--events-fd", events_fd, "write JSON-line events to this file descriptor")
      ->check(CLI::Validator(
          [](std::string& fd) -> std::string {
            int n = -1;
            const auto [end, ec] = std::from_chars(fd.data(), fd.data() + fd.size(), n);
            if (ec != std::errc() || end != fd.data() + fd.size() || n < -1) {
              return "must be a file descriptor number, or -1 for none (got '" + fd + "')";
            }
            if (n >= 0 && ::fcntl(n, F_GETFD) < 0) return "file descriptor " + fd + " is not open";
            return "";
          },
          "FD"));
  app.add_option("--steps", steps, "override train.steps (and the schedule's length with it)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  int64_t stop_at_step = 0;
  app.add_option("--stop-at-step", stop_at_step,
                 "end this run after step K with a checkpoint; the schedule is unchanged")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--threads", threads, "override train.threads (0 = all cores)")
      ->check(CLI::Range(0, dyt::kMaxThreads));
  dyt::AddLogLevelOption(app, log_level);
  app.add_option("--resume", resume, "auto (newest good checkpoint), a checkpoint dir, or none");
  app.add_option("--job-id", job_id, "job id recorded in checkpoints and events");
  if (auto exit = dyt::ParseCommandLine(app, argc, argv)) return *exit;

  // Data parallelism: dyt-launch (or the worker) sets DYT_RANK, DYT_WORLD_SIZE, DYT_RDZV...;
  // without them this is a single process.
  auto dist_env = dyt::dist::DistEnvFromEnvironment();
  if (!dist_env.ok()) {
    dyt::InitLogging("dyt-train", log_level);
    spdlog::error("{}", dist_env.status().message());
    return kExitBadConfig;
  }
  const int rank = dist_env->rank;
  dyt::InitLogging(dist_env->world_size > 1 ? "dyt-train[" + std::to_string(rank) + "]"
                                            : std::string("dyt-train"),
                   log_level);
  auto config = dyt::LoadTrainConfig(config_path);
  if (!config.ok()) {
    spdlog::error("invalid config: {}", config.status().message());
    return kExitBadConfig;
  }
  if (steps > 0) {
    if (config->optim.schedule.total_steps == config->train.steps) {
      config->optim.schedule.total_steps = steps;
    }
    config->train.steps = steps;
  }
  if (threads >= 0) config->train.threads = threads;
  if (!job_id.empty()) config->job_id = job_id;
  config->train.stop_at_step = stop_at_step;
  config->local_rank = dist_env->local_rank;

  dyt::EventWriter events(rank == 0 ? events_fd : -1);
#ifdef DYT_WITH_SCHEDULER_RDZV
  auto comm = dyt::dist::MakeHostCommunicator(*dist_env, dyt::dist::MakeSchedulerKvStore);
#else
  auto comm = dyt::dist::MakeHostCommunicator(*dist_env);
#endif
  if (!comm.ok()) {
    spdlog::error("rendezvous failed: {}", comm.status().ToString());
    events.Emit(nlohmann::json{{"event", "error"}, {"message", comm.status().ToString()}});
    return comm.status().code() == dyt::StatusCode::kInvalidArgument ? kExitBadConfig
                                                                     : kExitFailure;
  }
  auto trainer = dyt::Trainer::Create(*config, &events, comm->get());
  if (!trainer.ok()) {
    spdlog::error("{}", trainer.status().message());
    events.Emit(nlohmann::json{{"event", "error"}, {"message", trainer.status().ToString()}});
    return trainer.status().code() == dyt::StatusCode::kInvalidArgument ? kExitBadConfig
                                                                        : kExitFailure;
  }
  // Installed before resuming: a signal during a long load still ends in a clean stop.
  dyt::ShutdownSignal stop;
  if (const dyt::Status r = (*trainer)->Resume(resume); !r.ok()) {
    spdlog::error("resume failed: {}", r.ToString());
    events.Emit(nlohmann::json{{"event", "error"}, {"message", r.ToString()}});
    return r.code() == dyt::StatusCode::kInvalidArgument ? kExitBadConfig : kExitFailure;
  }
  const auto outcome = (*trainer)->Run(&stop);
  if (!outcome.ok()) {
    spdlog::error("training failed: {}", outcome.status().ToString());
    events.Emit(nlohmann::json{{"event", "error"}, {"message", outcome.status().ToString()}});
    return kExitFailure;
  }
  if (*outcome == dyt::RunOutcome::kSuperseded) {
    // Not resumable by this attempt, and no failure of the job: its later attempt runs.
    spdlog::error("stopped at step {}: superseded by a later attempt of job {}", (*trainer)->step(),
                  config->job_id);
    return kExitFailure;
  }
  if (*outcome == dyt::RunOutcome::kStopped && config->checkpoint.dir.empty()) {
    // Exit 3 promises a checkpoint to resume from; without a store there is none.
    spdlog::error(
        "stopped at step {} with nothing saved (no checkpoint.dir or output.dir): this "
        "run cannot be resumed",
        (*trainer)->step());
    return kExitFailure;
  }
  return *outcome == dyt::RunOutcome::kStopped ? kExitStopped : 0;
}
