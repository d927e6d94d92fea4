// JobService: the user-facing gRPC API of dyt-scheduler (proto/dyt/v1/job_service.proto) over
// the Scheduler (live state) and the durable StateStore (docs/scheduler.md).
//
// Every RPC validates its request first and answers INVALID_ARGUMENT naming the field and the
// rule, with nothing stored. Store errors keep their code (dyt::Status and grpc::Status codes
// are the same numbers). An exception thrown while handling a request becomes INTERNAL; it
// never takes the server down. An OK SubmitJob or CancelJob is durable (the store syncs its WAL
// before it returns).
//
// Every RPC first authenticates its caller and asks Authorize (scheduler/auth.h): no or a bad
// token is UNAUTHENTICATED, a role that may not do it PERMISSION_DENIED, another user's job
// NOT_FOUND. A submitted job's spec.owner is the token's user. The in-process methods (Submit,
// Get, ...) take the Caller; the default Caller is an anonymous admin (authentication off).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "dyt/v1/job_service.grpc.pb.h"
#include "scheduler/auth.h"
#include "scheduler/job_spec_validator.h"
#include "scheduler/key_lock.h"
#include "scheduler/rpc_guard.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/state_store.h"
#include "scheduler/submit_batcher.h"

namespace dyt {

struct JobServiceOptions {
  JobSpecValidatorOptions validator;
  // Threads committing batches of submissions (SubmitBatcher).
  int submit_committers = 2;
  // Who may do what; null: authentication off (every caller is an admin). Must outlive the
  // service.
  const Authenticator* auth = nullptr;
  // Jobs one owner may have QUEUED at once; a submission beyond is RESOURCE_EXHAUSTED.
  // 0: no limit.
  int max_queued_per_user = 0;
};

// SubmitJob is served on gRPC's callback API and committed in batches (SubmitBatcher); every
// other method is a plain synchronous handler.
class JobServiceImpl final
    : public v1::JobService::WithCallbackMethod_SubmitJob<v1::JobService::Service> {
 public:
  // `store`, `scheduler` (and `metrics`, when given) must outlive the service.
  JobServiceImpl(StateStore* store, Scheduler* scheduler, JobServiceOptions options = {},
                 SchedulerMetrics* metrics = nullptr);

  // Creates a QUEUED job with a first event. A retry with the same client_request_id and the
  // same spec returns the job the first call created; a different spec under a used request
  // id is ALREADY_EXISTS.
  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const v1::SubmitJobRequest* request,
                                      v1::SubmitJobResponse* response) override;
  // The job with its events; NOT_FOUND "job <id>: not found".
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  // Jobs matching the filters in submission order, with their events. page_size: 0 means
  // 100, above 1000 means 1000, negative is INVALID_ARGUMENT.
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  // Moves a job that has not finished to CANCELLED with an event carrying the reason;
  // FAILED_PRECONDITION naming the state for a job already SUCCEEDED, FAILED or CANCELLED.
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* response) override;

  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::WatchJobResponse>* writer) override;
  grpc::Status GetJobLogs(grpc::ServerContext* context, const v1::GetJobLogsRequest* request,
                          grpc::ServerWriter<v1::GetJobLogsResponse>* writer) override;
  // Only checkpoints whose directory is still in the artifact store (retention deletes old
  // ones).
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const v1::ListCheckpointsRequest* request,
                               v1::ListCheckpointsResponse* response) override;
  // The checkpoint's files, then its manifest.json (whose hash is computed as it is sent).
  grpc::Status DownloadCheckpoint(
      grpc::ServerContext* context, const v1::DownloadCheckpointRequest* request,
      grpc::ServerWriter<v1::DownloadCheckpointResponse>* writer) override;
  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  // Admin only (Scheduler::DrainWorker, Scheduler::RemoveWorker).
  grpc::Status DrainWorker(grpc::ServerContext* context, const v1::DrainWorkerRequest* request,
                           v1::WorkerStatus* response) override;
  grpc::Status RemoveWorker(grpc::ServerContext* context, const v1::RemoveWorkerRequest* request,
                            v1::RemoveWorkerResponse* response) override;

  // The same operations with dyt::Status, for in-process callers and tests.
  StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request, const Caller& caller = {});
  StatusOr<v1::Job> Get(const v1::GetJobRequest& request, const Caller& caller = {});
  StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request,
                                      const Caller& caller = {});
  StatusOr<v1::Job> Cancel(const v1::CancelJobRequest& request, const Caller& caller = {});
  StatusOr<std::vector<v1::CheckpointRecord>> Checkpoints(const std::string& job_id,
                                                          const Caller& caller = {});

 private:
  // The job `id` if `caller` may do `action` on it (Authorize); NOT_FOUND otherwise.
  StatusOr<v1::JobRecord> JobFor(const Caller& caller, Action action, const std::string& id,
                                 const std::string& field = "id") const;
  Status CheckQueuedLimit(const std::string& owner, const std::string& client_request_id) const;
  // validate_only: the prepared job, not created, with the scheduler's placement preview as
  // its reason.
  v1::Job Preview(const StateStore::NewJob& prepared) const;
  // spec.init_from_job: a job `caller` may read, with a checkpoint at init_from_step (0: the
  // latest, whose step is filled in). NOT_FOUND for a job it may not read or that does not
  // exist; FAILED_PRECONDITION without such a checkpoint.
  Status ResolveInitFrom(const Caller& caller, v1::JobSpec* spec) const;
  // A validated, authorized submission as the store takes it (owner = the caller's user).
  StatusOr<StateStore::NewJob> Prepare(const v1::SubmitJobRequest& request,
                                       const Caller& caller) const;
  // The answer to a submission once stored: ALREADY_EXISTS for a reused request id with another
  // spec; a new job's events are its one first event (no read).
  StatusOr<v1::Job> Answer(const v1::SubmitJobRequest& request, const StateStore::NewJob& sent,
                           StatusOr<CreateJobResult> result) const;

  // The API view of a stored job: record.job with its events.
  StatusOr<v1::Job> Assemble(const v1::JobRecord& record) const;
  // Scheduler::AdoptCheckpointsOnDisk for the job: how many it added (0 when the scan failed,
  // which is logged).
  int AdoptUnreportedCheckpoints(const std::string& job_id);

  Status Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
               grpc::ServerWriter<v1::WatchJobResponse>* writer);
  Status Logs(grpc::ServerContext* context, const v1::GetJobLogsRequest& request,
              grpc::ServerWriter<v1::GetJobLogsResponse>* writer);
  Status Download(grpc::ServerContext* context, const v1::DownloadCheckpointRequest& request,
                  grpc::ServerWriter<v1::DownloadCheckpointResponse>* writer);
  StatusOr<Caller> Authenticate(const grpc::ServerContextBase& context) const {
    return auth_->Authenticate(context);
  }

  StateStore* store_;
  Scheduler* scheduler_;
  JobSpecValidator validator_;
  SchedulerMetrics* metrics_;
  Authenticator no_auth_;
  const Authenticator* auth_;
  int max_queued_per_user_;
  SubmitBatcher batcher_;  // last: it commits what was handed over before the rest goes
};

}  // namespace dyt
