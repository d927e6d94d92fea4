// dyt-scheduler: the job and worker services over a durable RocksDB state directory
// (docs/scheduler.md).
//
// Serves JobService, WorkerService, grpc.health.v1.Health and server reflection on --listen,
// and Prometheus metrics on --metrics-listen. Prints "listening on HOST:PORT" (the port the OS
// picked for port 0) once it serves. SIGTERM or SIGINT shuts down gracefully: in-flight RPCs
// get --shutdown-grace-s to finish, then the store is closed and the process exits 0.
//
// Secure by default (docs/security.md): it serves TLS with --tls-cert/--tls-key and
// authenticates every call with a bearer token; without them it refuses to start unless
// --insecure (plaintext, no authentication: local tests only) is given. On its first secure
// start it creates an admin token and writes it to <data-dir>/admin.token (mode 0600), logging
// only that path.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/command_line.h"
#include "common/logging.h"
#include "common/signals.h"
#include "scheduler/auth.h"
#include "scheduler/auth_service.h"
#include "scheduler/job_service.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/state_store.h"
#include "scheduler/tls_files.h"
#include "scheduler/worker_service.h"

int main(int argc, char** argv) {
  // The store (job specs, token hashes) and the rest it writes are the service user's alone.
  ::umask(077);
  CLI::App app{"dyt-scheduler: the dyt job service"};
  std::string listen = "127.0.0.1:50051";
  std::string data_dir;
  std::vector<std::string> data_roots;
  double grace_s = 2.0;
  std::string log_level = "info";
  std::string artifact_root;
  std::string advertise;
  std::string metrics_listen;
  double heartbeat_interval_s = 1.0;
  double heartbeat_timeout_s = 10.0;
  double restart_backoff_s = 5.0;
  double stop_grace_s = 30.0;
  bool no_preemption = false;
  bool backfill = false;
  int submit_committers = 2;
  std::string tls_cert;
  std::string tls_key;
  bool insecure = false;
  int max_queued_per_user = 1000;
  app.add_option("--listen", listen, "HOST:PORT to serve gRPC on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "RocksDB state directory (created if missing)")
      ->required();
  app.add_option("--data-root", data_roots,
                 "Directory job data paths must lie under (repeatable; none: any absolute path)");
  app.add_option("--shutdown-grace-s", grace_s, "Seconds in-flight RPCs get on shutdown")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  dyt::AddLogLevelOption(app, log_level);
  app.add_option("--artifact-root", artifact_root,
                 "Shared directory for checkpoints (<root>/<job id>), seen by every worker at "
                 "the same path (default: <data-dir>/artifacts)");
  app.add_option("--advertise", advertise,
                 "HOST:PORT trainers use to reach this scheduler for rendezvous (default: the "
                 "listening address, 0.0.0.0 replaced by 127.0.0.1)");
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT for Prometheus /metrics (empty: no metrics endpoint)");
  app.add_option("--heartbeat-interval-s", heartbeat_interval_s, "Worker heartbeat period")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 60.0));
  app.add_option("--heartbeat-timeout-s", heartbeat_timeout_s,
                 "A worker silent this long is lost and its jobs are requeued")
      ->capture_default_str()
      ->check(CLI::Range(0.2, 3600.0));
  app.add_option("--restart-backoff-s", restart_backoff_s,
                 "Wait before a failed job's restart: this, doubled at each restart of the job, "
                 "at most 300 s (0: restart at once)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 300.0));
  app.add_option("--stop-grace-s", stop_grace_s,
                 "Seconds a worker gives a trainer between SIGTERM and SIGKILL")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--submit-committers", submit_committers,
                 "Threads committing batches of submissions (each batch: one WAL sync)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_flag("--no-preemption", no_preemption,
               "Never stop lower-priority jobs to make room for higher-priority ones");
  app.add_flag("--backfill", backfill,
               "Let later jobs that fit start ahead of a blocked job (may starve big jobs)");
  app.add_option("--tls-cert", tls_cert,
                 "PEM server certificate (chain) for TLS on --listen (scripts/dyt-certs.sh)");
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert");
  app.add_flag("--insecure", insecure,
               "Serve plaintext gRPC without authentication (local tests only; never on a "
               "network others can reach)");
  app.add_option("--max-queued-per-user", max_queued_per_user,
                 "Jobs one owner may have queued at once (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  if (auto exit = dyt::ParseCommandLine(app, argc, argv)) return *exit;
  dyt::InitLogging("dyt-scheduler", log_level);

  if (insecure && (!tls_cert.empty() || !tls_key.empty())) {
    spdlog::error("--insecure and --tls-cert/--tls-key exclude each other");
    return 2;
  }
  if (!insecure && (tls_cert.empty() || tls_key.empty())) {
    spdlog::error(
        "TLS is required: give --tls-cert and --tls-key (scripts/dyt-certs.sh makes them), or "
        "--insecure for a plaintext, unauthenticated scheduler (local tests only)");
    return 2;
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!insecure) {
    // Before the store: a refused start leaves no admin token behind.
    auto tls = dyt::LoadServerTlsFiles(tls_cert, tls_key);
    if (!tls.ok()) {
      spdlog::error("{}", tls.status().message());
      return 2;
    }
    for (const std::string& warning : tls->warnings) spdlog::warn("{}", warning);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    pair.cert_chain = std::move(tls->cert_chain);
    pair.private_key = std::move(tls->private_key);
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    credentials = grpc::SslServerCredentials(ssl);
  }

  dyt::ShutdownSignal shutdown;
  auto store = dyt::StateStore::Open(data_dir);
  if (!store.ok()) {
    spdlog::error("{}", store.status().ToString());
    return 1;
  }
  if (heartbeat_timeout_s <= heartbeat_interval_s) {
    spdlog::error("--heartbeat-timeout-s ({}) must be above --heartbeat-interval-s ({})",
                  heartbeat_timeout_s, heartbeat_interval_s);
    return 2;
  }
  // dyt-worker waits up to 5 s (+50% jitter) between reconnects (services/worker/session.h).
  if (heartbeat_timeout_s < 7.5) {
    spdlog::warn(
        "--heartbeat-timeout-s {} is below the 7.5 s a worker may wait between reconnects: after "
        "a scheduler restart, jobs of workers that are on their way back may be requeued",
        heartbeat_timeout_s);
  }
  if (artifact_root.empty()) artifact_root = data_dir + "/artifacts";
  std::error_code ec;
  std::filesystem::create_directories(artifact_root, ec);
  if (ec) {
    spdlog::error("--artifact-root {}: {}", artifact_root, ec.message());
    return 1;
  }
  artifact_root = std::filesystem::absolute(artifact_root).lexically_normal().string();
  while (artifact_root.size() > 1 && artifact_root.back() == '/') artifact_root.pop_back();

  dyt::SchedulerMetrics metrics;
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_listen);
    } catch (const std::exception& e) {
      spdlog::error("--metrics-listen {}: {}", metrics_listen, e.what());
      return 1;
    }
    exposer->RegisterCollectable(metrics.registry());
    auto ports = exposer->GetListeningPorts();
    spdlog::info("metrics on {} (port {})", metrics_listen, ports.empty() ? 0 : ports[0]);
  }

  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  dyt::SchedulerOptions scheduler_options;
  scheduler_options.heartbeat_interval = ms(heartbeat_interval_s);
  scheduler_options.heartbeat_timeout = ms(heartbeat_timeout_s);
  scheduler_options.stop_grace = ms(stop_grace_s);
  scheduler_options.restart_backoff = ms(restart_backoff_s);
  scheduler_options.preemption = !no_preemption;
  scheduler_options.backfill = backfill;
  scheduler_options.artifact_root = artifact_root;
  scheduler_options.data_roots = data_roots;

  dyt::Authenticator auth = insecure ? dyt::Authenticator() : dyt::Authenticator(store->get());
  // Before listening: whoever waits for the port (scripts/demo.sh, the tests, an operator's
  // script) reads the file next. A first start that then cannot listen leaves a token the next
  // start keeps (it finds one in the store and writes none), so the file stays valid.
  {
    std::string token_path = (std::filesystem::path(data_dir) / "admin.token").string();
    auto created = auth.BootstrapAdmin(token_path);
    if (!created.ok()) {
      spdlog::error("first admin token: {}", created.status().ToString());
      return 1;
    }
    if (*created) spdlog::info("first start: wrote the admin token to {} (mode 0600)", token_path);
  }
  if (insecure) spdlog::warn("--insecure: plaintext gRPC and no authentication");

  dyt::JobServiceOptions options;
  options.validator.data_roots = data_roots;
  options.submit_committers = submit_committers;
  options.auth = &auth;
  options.max_queued_per_user = max_queued_per_user;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials, &port);
  // gRPC sets SO_REUSEPORT by default: a second scheduler on the same port would start and
  // take a share of the clients' connections. Without it the second one fails to listen.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // The services are registered before the server starts; the scheduler starts after, once the
  // port it advertises to trainers is known (--listen may ask for port 0).
  auto scheduler = std::make_unique<dyt::Scheduler>(store->get(), scheduler_options, &metrics);
  auto job_service =
      std::make_unique<dyt::JobServiceImpl>(store->get(), scheduler.get(), options, &metrics);
  auto worker_service = std::make_unique<dyt::WorkerServiceImpl>(scheduler.get(), &metrics, &auth);
  auto auth_service = std::make_unique<dyt::AuthServiceImpl>(&auth, &metrics);
  builder.RegisterService(job_service.get());
  builder.RegisterService(worker_service.get());
  builder.RegisterService(auth_service.get());
  builder.SetMaxReceiveMessageSize(4 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::error(
        "--listen {}: cannot listen there (is the port in use, or the address not "
        "this machine's?)",
        listen);
    return 1;
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
  scheduler->SetAdvertiseAddress(advertise.empty() ? host + ":" + std::to_string(port) : advertise);
  dyt::Status started = scheduler->Start();
  if (!started.ok()) {
    spdlog::error("{}", started.ToString());
    return 1;
  }
  // The whole server ("") and each service by name, as load balancers and probes ask.
  for (const char* service : {"dyt.v1.JobService", "dyt.v1.WorkerService", "dyt.v1.AuthService"}) {
    server->GetHealthCheckService()->SetServingStatus(service, true);
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  spdlog::info("serving on {} (port {}), state in {}, artifacts in {}", listen, port, data_dir,
               artifact_root);
  std::printf("listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  while (!shutdown.requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  spdlog::info("signal {}: shutting down", shutdown.signal_number());
  server->GetHealthCheckService()->SetServingStatus(false);
  scheduler->Stop();  // ends worker sessions and watchers, flushes progress
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000)));
  server->Wait();
  server.reset();
  auth_service.reset();
  worker_service.reset();
  job_service.reset();
  scheduler.reset();
  store->reset();
  spdlog::info("stopped");
  return 0;
}
