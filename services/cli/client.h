// DytClient: the JobService calls dytctl makes, with errors a person understands.
//
// Every call answers a dyt::Status whose code is the server's and whose message says what
// happened in words: an unreachable server is "cannot reach the dyt scheduler at HOST:PORT:
// connection refused; is dyt-scheduler running? (--server/DYT_SERVER)", a missing method is
// "the dyt scheduler at HOST:PORT does not implement WatchJob", and server messages
// ("job job-000000000099: not found") pass through unchanged.
//
// Connect() waits at most config.connect_timeout_s for the first connection, so an unreachable
// server fails fast; after it, unary calls wait for a (re)connection within
// config.rpc_timeout_s. Streams have no deadline; they end with the server's status.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "dyt/v1/auth_service.grpc.pb.h"
#include "dyt/v1/job_service.grpc.pb.h"
#include "services/cli/client_config.h"

namespace dyt::cli {

struct SubmitRetryPolicy {
  int attempts = 5;              // calls in all
  double first_backoff_s = 0.2;  // doubles after each UNAVAILABLE
};

class DytClient {
 public:
  explicit DytClient(ClientConfig config);

  // Waits for a connection; UNAVAILABLE "cannot reach the dyt scheduler at ..." otherwise.
  Status Connect();

  // SubmitJob with validate_only: every check of a submission, nothing created; the job's
  // reason is the scheduler's placement preview.
  StatusOr<v1::Job> ValidateSubmission(const v1::JobSpec& spec);
  // SubmitJob; retried on UNAVAILABLE with the same client_request_id, so a retry after a lost
  // answer returns the job the first call created instead of creating a second one.
  StatusOr<v1::Job> Submit(const v1::JobSpec& spec, const std::string& client_request_id,
                           const SubmitRetryPolicy& retry = {});
  StatusOr<v1::Job> Get(const std::string& id);
  // Every job matching `filter`, following next_page_token to the end.
  StatusOr<std::vector<v1::Job>> ListAll(v1::ListJobsRequest filter);
  StatusOr<v1::Job> Cancel(const std::string& id, const std::string& reason);
  StatusOr<std::vector<v1::CheckpointRecord>> ListCheckpoints(const std::string& job_id);
  StatusOr<std::vector<v1::WorkerStatus>> ListWorkers();
  StatusOr<v1::WorkerStatus> DrainWorker(const v1::DrainWorkerRequest& request);
  Status RemoveWorker(const std::string& worker_id);

  // AuthService (docs/security.md).
  StatusOr<v1::CreateTokenResponse> CreateToken(const v1::CreateTokenRequest& request);
  StatusOr<std::vector<v1::TokenInfo>> ListTokens();
  StatusOr<v1::TokenInfo> RevokeToken(const std::string& id);
  StatusOr<v1::TokenInfo> WhoAmI();

  // Streams: `on_message` runs for each message; returning false stops the stream early
  // (then the result is OK). A non-OK Status from `on_download` ends the stream with it.
  Status Watch(const std::string& id, const std::function<bool(const v1::Job&)>& on_message);
  // Calls on_line for each line until it returns false; on_notice (if set) with the
  // scheduler's note on lines it no longer has (GetJobLogsResponse.notice).
  Status Logs(const v1::GetJobLogsRequest& request,
              const std::function<bool(const v1::LogLine&)>& on_line,
              const std::function<void(const std::string&)>& on_notice = nullptr);
  Status Download(const v1::DownloadCheckpointRequest& request,
                  const std::function<Status(const v1::DownloadCheckpointResponse&)>& on_chunk);

  const ClientConfig& config() const { return config_; }

  // The words for a failed call of `method` (exposed for tests).
  Status FromGrpc(const grpc::Status& status, const std::string& method) const;

 private:
  std::unique_ptr<grpc::ClientContext> UnaryContext() const;

  ClientConfig config_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::unique_ptr<v1::AuthService::Stub> auth_stub_;
};

// The reason in a gRPC UNAVAILABLE message, in words: "connection refused", "cannot resolve
// the host name", "the connection was lost", or the message itself.
std::string UnavailableReason(const std::string& grpc_message);

}  // namespace dyt::cli
