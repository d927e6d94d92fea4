// WorkerServiceImpl: the gRPC WorkerService of dyt-scheduler (proto/dyt/v1/worker_service.proto)
// over the Scheduler.
//
// Connect: the first message must be `register`; then one thread of the handler reads the
// worker's messages into the Scheduler while a writer thread drains the session's outbox onto
// the stream. The session ends when the worker goes away, when a newer registration of the
// same worker replaces it, or when the scheduler stops; the worker then has the heartbeat
// timeout to reconnect before its jobs are requeued.
//
// Callers authenticate with a bearer token (scheduler/auth.h): a worker token may register only
// as the worker id equal to its user, and use rendezvous only for job attempts placed on that
// worker; admin tokens may do everything; user and viewer tokens nothing here.
#pragma once

#include <grpcpp/grpcpp.h>

#include "dyt/v1/worker_service.grpc.pb.h"
#include "scheduler/auth.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_metrics.h"

namespace dyt {

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // `scheduler` (and `metrics`, `auth`) must outlive the service. `auth` null: authentication
  // off.
  explicit WorkerServiceImpl(Scheduler* scheduler, SchedulerMetrics* metrics = nullptr,
                             const Authenticator* auth = nullptr)
      : scheduler_(scheduler), metrics_(metrics), auth_(auth != nullptr ? auth : &no_auth_) {}

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SchedulerMessage, v1::WorkerMessage>* stream) override;
  grpc::Status SetRendezvous(grpc::ServerContext* context, const v1::SetRendezvousRequest* request,
                             v1::SetRendezvousResponse* response) override;
  grpc::Status GetRendezvous(grpc::ServerContext* context, const v1::GetRendezvousRequest* request,
                             v1::GetRendezvousResponse* response) override;

 private:
  // OK when the caller may use rendezvous of that job attempt.
  Status AuthorizeRendezvous(const grpc::ServerContext& context, const std::string& job_id,
                             int32_t attempt) const;

  Scheduler* scheduler_;
  SchedulerMetrics* metrics_;
  Authenticator no_auth_;
  const Authenticator* auth_;
};

}  // namespace dyt
