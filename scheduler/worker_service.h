// WorkerServiceImpl: the gRPC WorkerService of dyt-scheduler (proto/dyt/v1/worker_service.proto)
// over the Scheduler.
//
// Connect: the first message must be `register`; then one thread of the handler reads the
// worker's messages into the Scheduler while a writer thread drains the session's outbox onto
// the stream. The session ends when the worker goes away, when a newer registration of the
// same worker replaces it, or when the scheduler stops; the worker then has the heartbeat
// timeout to reconnect before its jobs are requeued.
#pragma once

#include <grpcpp/grpcpp.h>

#include "dyt/v1/worker_service.grpc.pb.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_metrics.h"

namespace dyt {

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // `scheduler` (and `metrics`) must outlive the service.
  explicit WorkerServiceImpl(Scheduler* scheduler, SchedulerMetrics* metrics = nullptr)
      : scheduler_(scheduler), metrics_(metrics) {}

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SchedulerMessage, v1::WorkerMessage>* stream) override;
  grpc::Status SetRendezvous(grpc::ServerContext* context, const v1::SetRendezvousRequest* request,
                             v1::SetRendezvousResponse* response) override;
  grpc::Status GetRendezvous(grpc::ServerContext* context, const v1::GetRendezvousRequest* request,
                             v1::GetRendezvousResponse* response) override;

 private:
  Scheduler* scheduler_;
  SchedulerMetrics* metrics_;
};

}  // namespace dyt
