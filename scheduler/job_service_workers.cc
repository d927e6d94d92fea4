// JobServiceImpl: the worker RPCs (ListWorkers for everyone who may list; DrainWorker and
// RemoveWorker for admins).
#include <spdlog/spdlog.h>

#include "scheduler/job_service.h"

namespace dyt {

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext* context,
                                         const v1::ListWorkersRequest*,
                                         v1::ListWorkersResponse* response) {
  return RpcGuard(metrics_, "ListWorkers", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kListWorkers));
    for (auto& w : scheduler_->ListWorkers()) {
      // A user sees which of its own jobs run where, not other users' job ids (which GetJob
      // answers as missing).
      if (caller.authenticated && caller.role == Role::kUser) {
        std::vector<std::string> own;
        for (const std::string& id : w.job_ids()) {
          auto job = scheduler_->GetJob(id);
          if (job.ok() && job->job().spec().owner() == caller.user) own.push_back(id);
        }
        w.clear_job_ids();
        for (auto& id : own) w.add_job_ids(std::move(id));
      }
      *response->add_workers() = std::move(w);
    }
    return Status::Ok();
  });
}

grpc::Status JobServiceImpl::DrainWorker(grpc::ServerContext* context,
                                         const v1::DrainWorkerRequest* request,
                                         v1::WorkerStatus* response) {
  return RpcGuard(metrics_, "DrainWorker", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kManageWorkers));
    DYT_ASSIGN_OR_RETURN(*response, scheduler_->DrainWorker(*request));
    spdlog::info("worker {} {} by {}", request->worker_id(),
                 !request->drain() ? "undrained"
                                   : (request->preempt() ? "drained with preemption" : "drained"),
                 CallerText(caller));
    return Status::Ok();
  });
}

grpc::Status JobServiceImpl::RemoveWorker(grpc::ServerContext* context,
                                          const v1::RemoveWorkerRequest* request,
                                          v1::RemoveWorkerResponse*) {
  return RpcGuard(metrics_, "RemoveWorker", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kManageWorkers));
    DYT_RETURN_IF_ERROR(scheduler_->RemoveWorker(request->worker_id()));
    spdlog::info("worker {} removed by {}", request->worker_id(), CallerText(caller));
    return Status::Ok();
  });
}

}  // namespace dyt
