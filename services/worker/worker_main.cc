// dyt-worker: the worker daemon. Registers this machine's slots with dyt-scheduler, runs the
// trainers it is assigned and reports on them (docs/worker.md).
//
//   dyt-worker --scheduler HOST:PORT [--cpu-slots N] [--worker-id ID] [--trainer PATH]
//              [--work-dir DIR] [--metrics-listen HOST:PORT] [--peak-flops F] [--log-level info]
//              [--orphan-timeout-s 60] [--stop-grace-s 30] [--dist-host HOST]
//
// SIGTERM / SIGINT: stops the trainers gracefully (they checkpoint), reports them, exits 0.
// Exit 2: bad flags or nothing to offer (no GPU and no --cpu-slots), or another live worker
// holds its worker id (its trainers are stopped as on SIGTERM first); 1: another startup
// error. A refused token (unknown, expired, revoked, or another worker's) does not end it: it
// says so (log, dyt_worker_scheduler_refused) and tries the token file again every
// --refused-retry-s (30 s).
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <random>
#include <thread>

#include "common/command_line.h"
#include "common/grpc_credentials.h"
#include "common/logging.h"
#include "common/signals.h"
#include "common/worker_id.h"
#include "services/worker/devices.h"
#include "services/worker/metrics.h"
#include "services/worker/model_flops.h"
#include "services/worker/outbox.h"
#include "services/worker/rank_logs.h"
#include "services/worker/session.h"
#include "services/worker/supervisor.h"

namespace {

std::string Hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "worker";
  return buf;
}

// dyt-train next to this binary.
std::string DefaultTrainer() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "dyt-train";
  return (self.parent_path() / "dyt-train").string();
}

}  // namespace

int main(int argc, char** argv) {
  // What the worker and its trainers write (rank logs, configs, checkpoints) is readable by
  // the owner and its group only, not by every local user: new files 0640, directories 0750.
  ::umask(027);
  CLI::App app{"dyt-worker: runs dyt-train jobs for dyt-scheduler"};
  std::string scheduler, worker_id = Hostname(), trainer = DefaultTrainer(),
                         work_dir = "/var/lib/dyt-worker", metrics_listen, log_level = "info",
                         dist_host, ca_file, token_file;
  int cpu_slots = 0;
  int64_t rank_log_max_mb = dyt::worker::RankLogs::kDefaultMaxBytes >> 20;
  double keep_attempt_dirs_days = 14;
  double orphan_timeout_s = 60, stop_grace_s = 30, peak_flops = 0, refused_retry_s = 30;
  app.add_option("--scheduler", scheduler, "HOST:PORT of dyt-scheduler")->required();
  app.add_option("--worker-id", worker_id, "stable worker id (default: the hostname)");
  app.add_option("--cpu-slots", cpu_slots, "offer N CPU slots (a CPU worker)");
  app.add_option("--trainer", trainer, "dyt-train binary (default: next to dyt-worker)");
  app.add_option("--work-dir", work_dir, "per-attempt configs and outputs")->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT for Prometheus /metrics (port 0 picks one; default: off)");
  app.add_option(
         "--peak-flops", peak_flops,
         "peak FLOP/s of one slot (one GPU, or one CPU core), e.g. 989e12 for an H100 "
         "SXM's dense BF16; exports dyt_job_mfu_ratio (default: known GPUs' peak, else no MFU)")
      ->check(CLI::NonNegativeNumber);
  dyt::AddLogLevelOption(app, log_level);
  app.add_option("--rank-log-max-mb", rank_log_max_mb,
                 "keep at most this much of each trainer rank's output in "
                 "<work-dir>/jobs/<job>/attempt-<n>/rank-<r>.log")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option(
         "--keep-attempt-dirs-days", keep_attempt_dirs_days,
         "delete a finished attempt's directory (config, rank logs) under "
         "<work-dir>/jobs once unchanged this long; checked at start and hourly (0: keep them "
         "all)")
      ->check(CLI::Range(0.0, 36500.0))
      ->capture_default_str();
  app.add_option("--orphan-timeout-s", orphan_timeout_s,
                 "stop the trainers when the scheduler is unreachable this long")
      ->check(dyt::NumberIn(1.0, 7 * 86400.0))
      ->capture_default_str();
  app.add_option("--stop-grace-s", stop_grace_s,
                 "SIGTERM -> SIGKILL delay when a stop names no grace, and at shutdown")
      ->check(dyt::NumberIn(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--dist-host", dist_host,
                 "DYT_DIST_HOST for the trainers (the address peers reach them on; default "
                 "127.0.0.1, one machine only)");
  app.add_option("--ca-file", ca_file,
                 "CA certificate (PEM) of the scheduler's TLS certificate; without it the "
                 "connection is plaintext (a scheduler started with --insecure)");
  app.add_option("--token-file", token_file,
                 "file holding this worker's token (dytctl token create --role worker --user "
                 "<worker id>); read at start, and again before each try after the scheduler "
                 "refused its token (a new token needs no restart); never logged");
  app.add_option("--refused-retry-s", refused_retry_s,
                 "seconds between tries while the scheduler refuses the token")
      ->check(dyt::NumberIn(0.1, 3600.0))
      ->capture_default_str();
  if (auto exit = dyt::ParseCommandLine(app, argc, argv)) return *exit;
  dyt::InitLogging("dyt-worker", log_level);

  if (!dyt::IsWorkerId(worker_id)) {
    spdlog::error("--worker-id '{}': must be {}", worker_id, dyt::kWorkerIdRule);
    return 2;
  }
  if (!(orphan_timeout_s > 0) || !(stop_grace_s >= 0)) {
    spdlog::error("--orphan-timeout-s must be > 0 and --stop-grace-s >= 0");
    return 2;
  }
  std::string ca_pem;
  std::string token;
  if (!ca_file.empty()) {
    auto pem = dyt::ReadCaFile(ca_file, "--ca-file");
    if (!pem.ok()) {
      spdlog::error("{}", pem.status().message());
      return 2;
    }
    ca_pem = *pem;
    ca_file = std::filesystem::absolute(ca_file).string();
  }
  if (!token_file.empty()) {
    auto read = dyt::ReadTokenFile(token_file);
    if (!read.ok()) {
      spdlog::error("--token-file: {}", read.status().message());
      return 2;
    }
    token = *read;
    token_file = std::filesystem::absolute(token_file).string();
  }
  if (!token.empty() && ca_pem.empty()) {
    spdlog::error("--token-file needs --ca-file: a token is only sent over TLS");
    return 2;
  }
  auto slots = dyt::worker::DetectSlots(cpu_slots);
  if (!slots.ok()) {
    spdlog::error("{}", slots.status().message());
    return 2;
  }
  if (::access(trainer.c_str(), X_OK) != 0) {
    spdlog::error("--trainer {}: not an executable file", trainer);
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec) {
    spdlog::error("--work-dir {}: {}", work_dir, ec.message());
    return 1;
  }
  dyt::worker::WorkerMetricsOptions metrics_options;
  metrics_options.listen = metrics_listen;
  metrics_options.kind = slots->kind;
  metrics_options.slots = slots->count;
  if (peak_flops == 0 && slots->kind == "gpu") {
    peak_flops = dyt::worker::KnownGpuPeakFlops(slots->device_name);
    if (peak_flops > 0) {
      spdlog::info(
          "peak {:.4g} FLOP/s per GPU for MFU, from the device name '{}' (dense BF16; "
          "--peak-flops overrides)",
          peak_flops, slots->device_name);
    } else {
      spdlog::info("GPU '{}' is not in the peak-FLOP/s table: pass --peak-flops for MFU",
                   slots->device_name);
    }
  }
  metrics_options.peak_flops_per_slot = peak_flops;
  auto metrics = dyt::worker::WorkerMetrics::Create(metrics_options);
  if (!metrics.ok()) {
    spdlog::error("{}", metrics.status().message());
    return 1;
  }
  if ((*metrics)->port() != 0) spdlog::info("metrics on port {}", (*metrics)->port());

  const auto grace = std::chrono::milliseconds(static_cast<int64_t>(stop_grace_s * 1000));
  dyt::worker::Outbox outbox;
  dyt::worker::SupervisorOptions sup_options;
  sup_options.trainer = trainer;
  sup_options.work_dir = work_dir;
  sup_options.slot_kind = slots->kind;
  sup_options.slots = slots->count;
  sup_options.dist_host = dist_host;
  sup_options.scheduler_ca_file = ca_file;
  sup_options.scheduler_token_file = token_file;
  sup_options.stop_grace = grace;
  sup_options.rank_log_max_bytes = rank_log_max_mb << 20;
  dyt::worker::Supervisor supervisor(sup_options, &outbox, metrics->get());

  dyt::worker::SessionOptions session_options;
  session_options.scheduler = scheduler;
  session_options.ca_pem = ca_pem;
  session_options.token = token;
  session_options.token_file = token_file;
  session_options.refused_backoff =
      std::chrono::milliseconds(static_cast<int64_t>(refused_retry_s * 1000));
  dyt::v1::RegisterWorker& reg = session_options.registration;
  {
    // Tells this process from another one started with the same --worker-id.
    std::random_device random;
    char instance[17];
    std::snprintf(instance, sizeof instance, "%08x%08x", random(), random());
    reg.set_instance_id(instance);
  }
  reg.set_worker_id(worker_id);
  reg.set_hostname(Hostname());
  reg.set_slot_kind(slots->kind);
  reg.set_slots(slots->count);
  reg.set_memory_bytes(slots->memory_bytes);
  reg.set_device_name(slots->device_name);
  dyt::worker::SessionHandlers handlers;
  handlers.assign = [&](const dyt::v1::Assignment& a) { supervisor.Assign(a); };
  handlers.stop = [&](const dyt::v1::StopJob& s) { supervisor.Stop(s); };
  handlers.running = [&] { return supervisor.Running(); };

  dyt::ShutdownSignal stop;
  dyt::worker::Session session(session_options, &outbox, handlers);
  spdlog::info("worker {}: {} {} slot(s) ({}), scheduler {}, trainer {}", worker_id, slots->count,
               slots->kind, slots->device_name, scheduler, trainer);
  session.Start();

  const auto orphan_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(orphan_timeout_s * 1000));
  bool orphaned = false;
  int exit_code = 0;
  const auto keep_attempt_dirs =
      std::chrono::seconds(static_cast<int64_t>(keep_attempt_dirs_days * 86400));
  auto next_prune = std::chrono::steady_clock::now();  // at start, then hourly
  while (!stop.requested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (*metrics)->SetConnected(session.connected());
    supervisor.Reap();
    if (keep_attempt_dirs.count() > 0 && std::chrono::steady_clock::now() >= next_prune) {
      supervisor.PruneWorkDir(keep_attempt_dirs);
      next_prune = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
    (*metrics)->SetRefused(!session.refused().empty());
    if (session.duplicate()) {
      spdlog::error("the scheduler refused worker {}: {}", worker_id, session.refused());
      exit_code = 2;
      break;
    }
    if (session.disconnected_for() >= orphan_timeout && supervisor.running_attempts() > 0) {
      if (!orphaned) {
        spdlog::warn("scheduler unreachable for {} s: stopping the trainers (they checkpoint)",
                     orphan_timeout_s);
        supervisor.StopAll(dyt::worker::StopCause::kOrphaned, grace);
        orphaned = true;
      }
    } else if (session.connected()) {
      orphaned = false;
    }
  }
  if (exit_code == 0) {
    spdlog::info("got signal {}: stopping the trainers", stop.signal_number());
    // Said before the trainers are stopped (the outbox keeps the order), so the scheduler takes
    // their stop for a preemption: their jobs resume elsewhere without a restart counted.
    dyt::v1::WorkerMessage leaving;
    leaving.mutable_shutting_down()->set_reason("received signal " +
                                                std::to_string(stop.signal_number()));
    outbox.Push(std::move(leaving));
    session.SetShuttingDown();
  }
  supervisor.StopAll(dyt::worker::StopCause::kShutdown, grace);
  if (!supervisor.WaitIdle(grace + std::chrono::seconds(5))) {
    spdlog::warn("trainers still running after the grace period");
  }
  session.Shutdown(std::chrono::seconds(3));
  spdlog::info("stopped");
  return exit_code;
}
