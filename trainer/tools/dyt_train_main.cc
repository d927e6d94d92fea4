// dyt-train: trains a LLaMA-DyT model from a YAML config.
//
//   dyt-train --config job.yaml [--events-fd 3] [--steps N] [--threads N] [--log-level info]
//
// Human-readable progress goes to stderr; JSON-line events (docs/trainer.md) go to the file
// descriptor given by --events-fd (the worker daemon passes a pipe). Exit codes: 0 done,
// 1 runtime failure, 2 invalid config or arguments, 3 stopped by SIGTERM/SIGINT.
#include <CLI/CLI.hpp>

#include "common/logging.h"
#include "common/signals.h"
#include "trainer/train/trainer.h"

namespace {
constexpr int kExitFailure = 1;
constexpr int kExitBadConfig = 2;
constexpr int kExitStopped = 3;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dyt-train: pretrain a LLaMA model with Dynamic Tanh normalization"};
  std::string config_path, log_level = "info";
  int events_fd = -1, threads = -1;
  int64_t steps = -1;
  app.add_option("--config", config_path, "YAML training config")->required();
  app.add_option("--events-fd", events_fd, "write JSON-line events to this file descriptor");
  app.add_option("--steps", steps, "override train.steps");
  app.add_option("--threads", threads, "override train.threads (0 = all cores)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  CLI11_PARSE(app, argc, argv);

  dyt::InitLogging("dyt-train", log_level);
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

  dyt::EventWriter events(events_fd);
  auto trainer = dyt::Trainer::Create(*config, &events);
  if (!trainer.ok()) {
    spdlog::error("{}", trainer.status().message());
    events.Emit({{"event", "error"}, {"message", trainer.status().ToString()}});
    return trainer.status().code() == dyt::StatusCode::kInvalidArgument ? kExitBadConfig
                                                                        : kExitFailure;
  }
  dyt::ShutdownSignal stop;
  const dyt::Status s = (*trainer)->Run(&stop);
  if (!s.ok()) {
    spdlog::error("training failed: {}", s.ToString());
    events.Emit({{"event", "error"}, {"message", s.ToString()}});
    return kExitFailure;
  }
  if (stop.requested()) return kExitStopped;
  return 0;
}
