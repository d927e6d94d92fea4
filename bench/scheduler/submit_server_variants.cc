// dyt-bench-submit-server: the scheduler's JobServiceImpl served with different gRPC server
// settings, to measure what limits SubmitJob throughput (bench/RESULTS.md, "Scheduler").
// Not a product binary: dyt-scheduler (scheduler/scheduler_main.cc) is the real server; this
// one takes the same --listen/--data-dir/--log-level flags and logs its port the same way, so
// run_submit_load.sh can start either (SCHEDULER=build/bin/dyt-bench-submit-server).
//
//   --mode sync      JobServiceImpl as is (synchronous API) with --min-pollers, --max-pollers,
//                    --cqs (ServerBuilder::SetSyncServerOption) and --max-threads
//                    (ResourceQuota::SetMaxThreads; 0: gRPC's default).
//   --mode callback  a callback-API JobService whose SubmitJob hands the request to a pool of
//                    --workers threads that call JobServiceImpl::Submit (a blocking synced
//                    write) and then finish the reactor; the gRPC threads never block.
// On exit it logs the store's counters: commits, WAL syncs, commits per sync.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "common/signals.h"
#include "scheduler/job_service.h"
#include "scheduler/state_store.h"

namespace {

// A fixed pool of threads running posted tasks in order.
class WorkPool {
 public:
  explicit WorkPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// SubmitJob over the callback API; the other methods are left unimplemented (the load
// generator only submits).
class CallbackSubmit final : public dyt::v1::JobService::CallbackService {
 public:
  CallbackSubmit(dyt::JobServiceImpl* impl, WorkPool* pool) : impl_(impl), pool_(pool) {}

  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const dyt::v1::SubmitJobRequest* request,
                                      dyt::v1::SubmitJobResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    pool_->Post([this, reactor, request, response] {
      auto job = impl_->Submit(*request);
      if (job.ok()) {
        *response->mutable_job() = std::move(*job);
        reactor->Finish(grpc::Status::OK);
      } else {
        reactor->Finish(dyt::ToGrpcStatus(job.status()));
      }
    });
    return reactor;
  }

 private:
  dyt::JobServiceImpl* impl_;
  WorkPool* pool_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dyt-bench-submit-server: JobServiceImpl under different gRPC server settings"};
  std::string listen = "127.0.0.1:0";
  std::string data_dir;
  std::string log_level = "info";
  std::string mode = "sync";
  int min_pollers = 0;
  int max_pollers = 0;
  int cqs = 0;
  int max_threads = 0;
  int workers = 64;
  app.add_option("--listen", listen)->capture_default_str();
  app.add_option("--data-dir", data_dir)->required();
  app.add_option("--log-level", log_level)->capture_default_str();
  app.add_option("--mode", mode)->check(CLI::IsMember({"sync", "callback"}))->capture_default_str();
  app.add_option("--min-pollers", min_pollers, "sync: MIN_POLLERS (0: gRPC default)");
  app.add_option("--max-pollers", max_pollers, "sync: MAX_POLLERS (0: gRPC default)");
  app.add_option("--cqs", cqs, "sync: NUM_CQS (0: gRPC default)");
  app.add_option("--max-threads", max_threads, "ResourceQuota max threads (0: default)");
  app.add_option("--workers", workers, "callback: threads doing the synced writes")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  dyt::InitLogging("dyt-bench-submit-server", log_level);

  dyt::ShutdownSignal shutdown;
  auto store = dyt::StateStore::Open(data_dir);
  if (!store.ok()) {
    spdlog::error("{}", store.status().ToString());
    return 1;
  }
  dyt::JobServiceImpl service(store->get());
  std::unique_ptr<WorkPool> pool;
  std::unique_ptr<CallbackSubmit> callback;

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  if (mode == "sync") {
    using Option = grpc::ServerBuilder::SyncServerOption;
    if (min_pollers > 0) builder.SetSyncServerOption(Option::MIN_POLLERS, min_pollers);
    if (max_pollers > 0) builder.SetSyncServerOption(Option::MAX_POLLERS, max_pollers);
    if (cqs > 0) builder.SetSyncServerOption(Option::NUM_CQS, cqs);
    builder.RegisterService(&service);
  } else {
    pool = std::make_unique<WorkPool>(workers);
    callback = std::make_unique<CallbackSubmit>(&service, pool.get());
    builder.RegisterService(callback.get());
  }
  if (max_threads > 0) {
    grpc::ResourceQuota quota("bench");
    quota.SetMaxThreads(max_threads);
    builder.SetResourceQuota(quota);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::error("cannot listen on {}", listen);
    return 1;
  }
  spdlog::info("serving on {} (port {}), mode {}, state in {}", listen, port, mode, data_dir);
  while (!shutdown.requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  server.reset();
  pool.reset();
  const dyt::StoreCounters c = (*store)->counters();
  spdlog::info("store: {} commits, {} WAL syncs, {:.2f} commits per sync", c.commits, c.wal_syncs,
               c.wal_syncs == 0 ? 0.0 : static_cast<double>(c.commits) / c.wal_syncs);
  return 0;
}
