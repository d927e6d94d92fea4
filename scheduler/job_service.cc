#include "scheduler/job_service.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <utility>

#include "common/reason_rules.h"
#include "scheduler/job_states.h"
#include "scheduler/state_keys.h"

namespace dyt {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kMaxIdLength = 256;

Status CheckJobId(const std::string& id, const std::string& field = "id") {
  if (id.empty()) return InvalidArgument(field + ": required");
  if (id.size() > static_cast<size_t>(kMaxIdLength)) {
    return InvalidArgument(field + ": at most " + std::to_string(kMaxIdLength) +
                           " characters (got " + std::to_string(id.size()) + ")");
  }
  if (id.find('\0') != std::string::npos) return InvalidArgument(field + ": must not contain NUL");
  return Status::Ok();
}

}  // namespace

JobServiceImpl::JobServiceImpl(StateStore* store, Scheduler* scheduler, JobServiceOptions options,
                               SchedulerMetrics* metrics)
    : store_(store),
      scheduler_(scheduler),
      validator_(std::move(options.validator)),
      metrics_(metrics),
      auth_(options.auth != nullptr ? options.auth : &no_auth_),
      max_queued_per_user_(options.max_queued_per_user),
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

StatusOr<v1::JobRecord> JobServiceImpl::JobFor(const Caller& caller, Action action,
                                               const std::string& id,
                                               const std::string& field) const {
  DYT_RETURN_IF_ERROR(CheckJobId(id, field));
  AccessTarget target;
  target.job_id = id;
  // May the role do this to any job (its own, at least)? Then which job it is.
  target.job_owner = caller.user;
  DYT_RETURN_IF_ERROR(auth_->Check(caller, action, target));
  DYT_ASSIGN_OR_RETURN(v1::JobRecord record, scheduler_->GetJob(id));
  target.job_owner = record.job().spec().owner();
  DYT_RETURN_IF_ERROR(auth_->Check(caller, action, target));
  return record;
}

Status JobServiceImpl::CheckQueuedLimit(const std::string& owner,
                                        const std::string& client_request_id) const {
  if (max_queued_per_user_ <= 0) return Status::Ok();
  // A retry of a submission that already created its job is not a new job.
  if (!client_request_id.empty() &&
      store_->FindJobByRequestId(ScopedRequestId(owner, client_request_id)).ok()) {
    return Status::Ok();
  }
  int queued = scheduler_->QueuedJobsOf(owner);
  if (queued >= max_queued_per_user_) {
    return Status(StatusCode::kResourceExhausted,
                  "owner " + owner + ": has " + std::to_string(queued) +
                      " queued jobs, the limit per user (--max-queued-per-user is " +
                      std::to_string(max_queued_per_user_) + ")");
  }
  return Status::Ok();
}

StatusOr<StateStore::NewJob> JobServiceImpl::Prepare(const v1::SubmitJobRequest& request,
                                                     const Caller& caller) const {
  DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kSubmitJob));
  if (!request.has_spec()) return InvalidArgument("spec: required");
  DYT_RETURN_IF_ERROR(JobSpecValidator::ValidateClientRequestId(request.client_request_id()));
  v1::JobSpec spec = request.spec();
  spec.set_owner(SubmitOwner(caller, spec.owner()));
  DYT_RETURN_IF_ERROR(validator_.Validate(spec));
  DYT_RETURN_IF_ERROR(ResolveInitFrom(caller, &spec));
  // Checked before the (batched) write: concurrent submissions of one user may overshoot the
  // limit by the number in flight at once.
  DYT_RETURN_IF_ERROR(CheckQueuedLimit(spec.owner(), request.client_request_id()));

  auto now = TimeUtil::GetCurrentTime();
  StateStore::NewJob out;
  // Scoped to the owner: another user's id neither finds this job nor blocks theirs.
  if (!request.client_request_id().empty()) {
    out.record.set_client_request_id(ScopedRequestId(spec.owner(), request.client_request_id()));
  }
  v1::Job* job = out.record.mutable_job();
  *job->mutable_spec() = std::move(spec);
  job->set_state(v1::QUEUED);
  job->set_attempt(0);
  *job->mutable_created() = now;
  *job->mutable_updated() = now;
  *out.event.mutable_time() = now;
  out.event.set_state(v1::QUEUED);
  out.event.set_reason("submitted");
  return out;
}

Status JobServiceImpl::ResolveInitFrom(const Caller& caller, v1::JobSpec* spec) const {
  if (spec->init_from_job().empty()) {
    if (spec->init_from_step() != 0) {
      return InvalidArgument("spec.init_from_step: needs spec.init_from_job");
    }
    if (spec->init_from_weights_only()) {
      return InvalidArgument("spec.init_from_weights_only: needs spec.init_from_job");
    }
    return Status::Ok();
  }
  // Only a job the caller may read (another user's is NOT_FOUND, as everywhere).
  DYT_RETURN_IF_ERROR(JobFor(caller, Action::kReadJob, spec->init_from_job(), "spec.init_from_job")
                          .status()
                          .WithContext("spec.init_from_job"));
  DYT_ASSIGN_OR_RETURN(std::vector<v1::CheckpointRecord> checkpoints,
                       store_->ListCheckpoints(spec->init_from_job()));
  if (checkpoints.empty()) {
    return FailedPrecondition("spec.init_from_job: job " + spec->init_from_job() +
                              " has no checkpoint to start from");
  }
  if (spec->init_from_step() == 0) {
    spec->set_init_from_step(checkpoints.back().step());  // lowest step first: the latest
    return Status::Ok();
  }
  for (const auto& c : checkpoints) {
    if (c.step() == spec->init_from_step()) return Status::Ok();
  }
  std::string steps;
  for (const auto& c : checkpoints) steps += (steps.empty() ? "" : ", ") + std::to_string(c.step());
  return FailedPrecondition("spec.init_from_step: job " + spec->init_from_job() +
                            " has no checkpoint at step " + std::to_string(spec->init_from_step()) +
                            " (it has: " + steps + ")");
}

v1::Job JobServiceImpl::Preview(const StateStore::NewJob& prepared) const {
  v1::Job job = prepared.record.job();       // no id: nothing was created
  job.set_state(v1::JOB_STATE_UNSPECIFIED);  // nor queued
  job.clear_events();
  job.set_reason(scheduler_->PlacementPreview(job.spec()));
  return job;
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
                                                          sent.record.job().spec())) {
    return Status(StatusCode::kAlreadyExists, "client_request_id: '" + request.client_request_id() +
                                                  "' was already used for job " +
                                                  result->record.job().id() +
                                                  " with a different spec");
  }
  return Assemble(result->record);
}

StatusOr<v1::Job> JobServiceImpl::Submit(const v1::SubmitJobRequest& request,
                                         const Caller& caller) {
  DYT_ASSIGN_OR_RETURN(StateStore::NewJob job, Prepare(request, caller));
  if (request.validate_only()) return Preview(job);
  StatusOr<CreateJobResult> result = scheduler_->Submit(job.record, job.event);
  return Answer(request, job, std::move(result));
}

StatusOr<v1::Job> JobServiceImpl::Get(const v1::GetJobRequest& request, const Caller& caller) {
  DYT_ASSIGN_OR_RETURN(auto record, JobFor(caller, Action::kReadJob, request.id()));
  // A job that ran and is not running now may have a checkpoint no worker reported (its worker
  // died): its last_checkpoint_step counts it. Running jobs' checkpoints come as reports.
  const v1::JobState state = record.job().state();
  if (record.job().attempt() > 0 && state != v1::SCHEDULED && state != v1::RUNNING &&
      AdoptUnreportedCheckpoints(request.id()) > 0) {
    DYT_ASSIGN_OR_RETURN(record, JobFor(caller, Action::kReadJob, request.id()));
  }
  return Assemble(record);
}

int JobServiceImpl::AdoptUnreportedCheckpoints(const std::string& job_id) {
  StatusOr<int> adopted = scheduler_->AdoptCheckpointsOnDisk(job_id);
  if (!adopted.ok()) {
    spdlog::warn("job {}: looking for unreported checkpoints: {}", job_id,
                 adopted.status().ToString());
    return 0;
  }
  return *adopted;
}

StatusOr<v1::ListJobsResponse> JobServiceImpl::List(const v1::ListJobsRequest& request,
                                                    const Caller& caller) {
  DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kListJobs));
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
  DYT_ASSIGN_OR_RETURN(filter.owner, ListOwnerScope(caller, request.owner()));
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

StatusOr<v1::Job> JobServiceImpl::Cancel(const v1::CancelJobRequest& request,
                                         const Caller& caller) {
  DYT_RETURN_IF_ERROR(JobFor(caller, Action::kCancelJob, request.id()).status());
  if (std::string rule = ReasonRule(request.reason(), /*multiline=*/true); !rule.empty()) {
    return InvalidArgument("reason: " + rule);
  }
  std::string reason = request.reason().empty() ? "cancelled by user" : request.reason();
  DYT_ASSIGN_OR_RETURN(v1::JobRecord record, scheduler_->Cancel(request.id(), reason));
  spdlog::info("job {} cancelled by {}: {}", request.id(), CallerText(caller),
               reason.substr(0, 200));
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
  StatusOr<StateStore::NewJob> job = [&]() -> StatusOr<StateStore::NewJob> {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    return Prepare(*request, caller);
  }();
  if (!job.ok()) {
    finish(job.status());
    return reactor;
  }
  if (request->validate_only()) {
    *response->mutable_job() = Preview(*job);
    finish(Status::Ok());
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

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  return RpcGuard(metrics_, "GetJob", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    DYT_ASSIGN_OR_RETURN(*response, Get(*request, caller));
    return Status::Ok();
  });
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* context,
                                      const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  return RpcGuard(metrics_, "ListJobs", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    DYT_ASSIGN_OR_RETURN(*response, List(*request, caller));
    return Status::Ok();
  });
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* context,
                                       const v1::CancelJobRequest* request, v1::Job* response) {
  return RpcGuard(metrics_, "CancelJob", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    DYT_ASSIGN_OR_RETURN(*response, Cancel(*request, caller));
    return Status::Ok();
  });
}

}  // namespace dyt
