// dyt-scheduler: the job service over a durable RocksDB state directory (docs/scheduler.md).
//
// Serves JobService, grpc.health.v1.Health and server reflection on --listen. SIGTERM or
// SIGINT shuts down gracefully: in-flight RPCs get --shutdown-grace-s to finish, then the
// store is closed and the process exits 0.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "common/signals.h"
#include "scheduler/job_service.h"
#include "scheduler/state_store.h"

int main(int argc, char** argv) {
  CLI::App app{"dyt-scheduler: the dyt job service"};
  std::string listen = "127.0.0.1:50051";
  std::string data_dir;
  std::vector<std::string> data_roots;
  double grace_s = 2.0;
  std::string log_level = "info";
  app.add_option("--listen", listen, "HOST:PORT to serve gRPC on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "RocksDB state directory (created if missing)")
      ->required();
  app.add_option("--data-root", data_roots,
                 "Directory job data paths must lie under (repeatable; none: any absolute path)");
  app.add_option("--shutdown-grace-s", grace_s, "Seconds in-flight RPCs get on shutdown")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  dyt::InitLogging("dyt-scheduler", log_level);

  dyt::ShutdownSignal shutdown;
  auto store = dyt::StateStore::Open(data_dir);
  if (!store.ok()) {
    spdlog::error("{}", store.status().ToString());
    return 1;
  }
  dyt::JobServiceOptions options;
  options.validator.data_roots = data_roots;
  dyt::JobServiceImpl service(store->get(), options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::error("cannot listen on {}", listen);
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  spdlog::info("serving on {} (port {}), state in {}", listen, port, data_dir);

  while (!shutdown.requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  spdlog::info("signal {}: shutting down", shutdown.signal_number());
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000)));
  server->Wait();
  server.reset();
  store->reset();
  spdlog::info("stopped");
  return 0;
}
