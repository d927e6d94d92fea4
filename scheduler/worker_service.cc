#include "scheduler/worker_service.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "scheduler/rpc_guard.h"

namespace dyt {
namespace {

AccessTarget WorkerTarget(const std::string& worker_id) {
  AccessTarget target;
  target.worker_id = worker_id;
  return target;
}

}  // namespace

grpc::Status WorkerServiceImpl::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::SchedulerMessage, v1::WorkerMessage>* stream) {
  return StreamGuard(metrics_, "Connect", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, auth_->Authenticate(*context));
    DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kWorkerConnect, WorkerTarget(caller.user)));
    v1::WorkerMessage first;
    if (!stream->Read(&first)) return Status::Ok();  // the worker went away at once
    if (first.kind_case() != v1::WorkerMessage::kRegister) {
      return FailedPrecondition("register: the first message of a session must be register");
    }
    DYT_RETURN_IF_ERROR(
        auth_->Check(caller, Action::kWorkerConnect, WorkerTarget(first.register_().worker_id())));
    DYT_ASSIGN_OR_RETURN(std::shared_ptr<WorkerSession> session,
                         scheduler_->Register(first.register_()));
    std::atomic<bool> done{false};
    Status writer_ended = Status::Ok();  // the writer's own: it stopped writing
    std::thread writer([&] {
      while (!done.load()) {
        std::optional<v1::SchedulerMessage> message = session->Pop(std::chrono::milliseconds(200));
        if (!message) {
          if (session->closed()) break;
          continue;
        }
        // Nothing reaches a worker whose token was revoked or expired since the last check; the
        // reader ends the call with that status at the worker's next message (a heartbeat comes
        // every second), or the heartbeat timeout closes the session.
        if (writer_ended.ok()) {
          if (StatusOr<Caller> again = auth_->Authenticate(*context); !again.ok()) {
            writer_ended = again.status();
          }
        }
        if (!writer_ended.ok()) continue;
        if (!stream->Write(*message)) break;
      }
      // Closed by the scheduler (replaced, stopping) or the stream broke: end the call so the
      // reader below returns. When the reader ended first, the call ends with its status.
      if (!done.load()) context->TryCancel();
    });
    v1::WorkerMessage message;
    Status ended = Status::Ok();
    while (stream->Read(&message)) {
      // The token is checked again on every message (a heartbeat comes every second), so a
      // revoked or expired worker token ends its open session, and its slots get no more jobs.
      if (StatusOr<Caller> again = auth_->Authenticate(*context); !again.ok()) {
        spdlog::warn("worker {}: {}; ending its session", session->worker_id(),
                     again.status().message());
        ended = again.status();
        break;
      }
      Status handled = scheduler_->OnWorkerMessage(session, message);
      if (!handled.ok()) {
        if (handled.code() == StatusCode::kFailedPrecondition && session->closed()) break;
        spdlog::warn("worker {}: {}", session->worker_id(), handled.ToString());
      }
    }
    done = true;
    scheduler_->Disconnected(session);
    writer.join();
    return ended;
  });
}

Status WorkerServiceImpl::AuthorizeRendezvous(const grpc::ServerContext& context,
                                              const std::string& job_id, int32_t attempt) const {
  DYT_ASSIGN_OR_RETURN(Caller caller, auth_->Authenticate(context));
  AccessTarget target;
  target.job_id = job_id;
  if (caller.role == Role::kWorker) {
    // The workers the job's current attempt is placed on (none for another attempt).
    auto record = scheduler_->GetJob(job_id);
    if (record.ok() && record->job().attempt() == attempt) {
      for (const auto& p : record->placement()) target.attempt_workers.push_back(p.worker_id());
    }
  }
  return auth_->Check(caller, Action::kRendezvous, target);
}

grpc::Status WorkerServiceImpl::SetRendezvous(grpc::ServerContext* context,
                                              const v1::SetRendezvousRequest* request,
                                              v1::SetRendezvousResponse*) {
  return RpcGuard(metrics_, "SetRendezvous", [&]() -> Status {
    DYT_RETURN_IF_ERROR(AuthorizeRendezvous(*context, request->job_id(), request->attempt()));
    return scheduler_->SetRendezvous(*request);
  });
}

grpc::Status WorkerServiceImpl::GetRendezvous(grpc::ServerContext* context,
                                              const v1::GetRendezvousRequest* request,
                                              v1::GetRendezvousResponse* response) {
  return RpcGuard(metrics_, "GetRendezvous", [&]() -> Status {
    DYT_RETURN_IF_ERROR(AuthorizeRendezvous(*context, request->job_id(), request->attempt()));
    DYT_ASSIGN_OR_RETURN(std::string value, scheduler_->GetRendezvous(*request));
    response->set_value(std::move(value));
    return Status::Ok();
  });
}

}  // namespace dyt
