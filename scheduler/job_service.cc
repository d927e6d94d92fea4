#include "scheduler/job_service.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <utility>

#include "scheduler/job_states.h"

namespace dyt {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kMaxIdLength = 256;

Status CheckJobId(const std::string& id) {
  if (id.empty()) return InvalidArgument("id: required");
  if (id.size() > static_cast<size_t>(kMaxIdLength)) {
    return InvalidArgument("id: at most " + std::to_string(kMaxIdLength) + " characters (got " +
                           std::to_string(id.size()) + ")");
  }
  if (id.find('\0') != std::string::npos) return InvalidArgument("id: must not contain NUL");
  return Status::Ok();
}

}  // namespace

JobServiceImpl::JobServiceImpl(StateStore* store, Scheduler* scheduler, JobServiceOptions options,
                               SchedulerMetrics* metrics)
    : store_(store),
      scheduler_(scheduler),
      validator_(std::move(options.validator)),
      metrics_(metrics),
      batcher_(scheduler, options.submit_committers) {}

StatusOr<v1::Job> JobServiceImpl::Assemble(const v1::JobRecord& record) const {
  v1::Job job = record.job();
  job.clear_events();
  job.set_reason(record.state_reason());
  *job.mutable_placement() = record.placement();
  DYT_ASSIGN_OR_RETURN(auto events, store_->ListJobEvents(job.id()));
  for (auto& e : events) *job.add_events() = std::move(e.event);
  return job;
}

StatusOr<StateStore::NewJob> JobServiceImpl::Prepare(const v1::SubmitJobRequest& request) const {
  if (!request.has_spec()) return InvalidArgument("spec: required");
  DYT_RETURN_IF_ERROR(JobSpecValidator::ValidateClientRequestId(request.client_request_id()));
  DYT_RETURN_IF_ERROR(validator_.Validate(request.spec()));

  auto now = TimeUtil::GetCurrentTime();
  StateStore::NewJob out;
  out.record.set_client_request_id(request.client_request_id());
  v1::Job* job = out.record.mutable_job();
  *job->mutable_spec() = request.spec();
  job->set_state(v1::QUEUED);
  job->set_attempt(0);
  *job->mutable_created() = now;
  *job->mutable_updated() = now;
  *out.event.mutable_time() = now;
  out.event.set_state(v1::QUEUED);
  out.event.set_reason("submitted");
  return out;
}

StatusOr<v1::Job> JobServiceImpl::Answer(const v1::SubmitJobRequest& request,
                                         const StateStore::NewJob& sent,
                                         StatusOr<CreateJobResult> result) const {
  DYT_RETURN_IF_ERROR(result.status());
  if (result->created) {
    v1::Job job = result->record.job();
    *job.add_events() = sent.event;
    return job;
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(result->record.job().spec(),
                                                          request.spec())) {
    return Status(StatusCode::kAlreadyExists, "client_request_id: '" + request.client_request_id() +
                                                  "' was already used for job " +
                                                  result->record.job().id() +
                                                  " with a different spec");
  }
  return Assemble(result->record);
}

StatusOr<v1::Job> JobServiceImpl::Submit(const v1::SubmitJobRequest& request) {
  DYT_ASSIGN_OR_RETURN(StateStore::NewJob job, Prepare(request));
  StatusOr<CreateJobResult> result = scheduler_->Submit(job.record, job.event);
  return Answer(request, job, std::move(result));
}

StatusOr<v1::Job> JobServiceImpl::Get(const v1::GetJobRequest& request) {
  DYT_RETURN_IF_ERROR(CheckJobId(request.id()));
  DYT_ASSIGN_OR_RETURN(auto record, scheduler_->GetJob(request.id()));
  return Assemble(record);
}

StatusOr<v1::ListJobsResponse> JobServiceImpl::List(const v1::ListJobsRequest& request) {
  if (request.page_size() < 0) {
    return InvalidArgument(
        "page_size: must be >= 0 (0: " + std::to_string(StateStore::kDefaultPageSize) + "; got " +
        std::to_string(request.page_size()) + ")");
  }
  if (!v1::JobState_IsValid(request.state())) {
    return InvalidArgument("state: unknown job state " + std::to_string(request.state()));
  }
  JobFilter filter;
  filter.state = request.state();
  filter.owner = request.owner();
  filter.name = request.name();
  int page_size = request.page_size() == 0 ? StateStore::kDefaultPageSize : request.page_size();
  if (page_size > StateStore::kMaxPageSize) page_size = StateStore::kMaxPageSize;
  DYT_ASSIGN_OR_RETURN(JobPage page, store_->ListJobs(filter, page_size, request.page_token()));
  v1::ListJobsResponse response;
  for (const auto& stored : page.jobs) {
    // Unfinished jobs: the live record (fresh progress, held reasons).
    v1::JobRecord record = stored;
    if (!IsTerminalJobState(stored.job().state())) {
      auto live = scheduler_->GetJob(stored.job().id());
      if (live.ok()) record = std::move(*live);
    }
    DYT_ASSIGN_OR_RETURN(v1::Job job, Assemble(record));
    *response.add_jobs() = std::move(job);
  }
  response.set_next_page_token(page.next_page_token);
  return response;
}

StatusOr<v1::Job> JobServiceImpl::Cancel(const v1::CancelJobRequest& request) {
  DYT_RETURN_IF_ERROR(CheckJobId(request.id()));
  if (request.reason().size() > static_cast<size_t>(JobSpecLimits::kMaxReasonLength)) {
    return InvalidArgument("reason: at most " + std::to_string(JobSpecLimits::kMaxReasonLength) +
                           " characters (got " + std::to_string(request.reason().size()) + ")");
  }
  std::string reason = request.reason().empty() ? "cancelled by user" : request.reason();
  DYT_ASSIGN_OR_RETURN(v1::JobRecord record, scheduler_->Cancel(request.id(), reason));
  return Assemble(record);
}

grpc::ServerUnaryReactor* JobServiceImpl::SubmitJob(grpc::CallbackServerContext* context,
                                                    const v1::SubmitJobRequest* request,
                                                    v1::SubmitJobResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto start = std::chrono::steady_clock::now();
  auto finish = [this, reactor, start](const Status& status) {
    grpc::Status result = ToGrpcStatus(status);
    if (metrics_ != nullptr) {
      metrics_->Rpc(
          "SubmitJob", GrpcCodeName(result.error_code()),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    reactor->Finish(result);
  };
  StatusOr<StateStore::NewJob> job = Prepare(*request);
  if (!job.ok()) {
    finish(job.status());
    return reactor;
  }
  auto sent = std::make_shared<StateStore::NewJob>(*job);
  batcher_.Submit(std::move(*job),
                  [this, request, response, sent, finish](StatusOr<CreateJobResult> result) {
                    StatusOr<v1::Job> answer = Answer(*request, *sent, std::move(result));
                    if (answer.ok()) *response->mutable_job() = std::move(*answer);
                    finish(answer.status());
                  });
  return reactor;
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  return RpcGuard(metrics_, "GetJob", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(*response, Get(*request));
    return Status::Ok();
  });
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  return RpcGuard(metrics_, "ListJobs", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(*response, List(*request));
    return Status::Ok();
  });
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                                       v1::Job* response) {
  return RpcGuard(metrics_, "CancelJob", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(*response, Cancel(*request));
    return Status::Ok();
  });
}

}  // namespace dyt
