#include "services/cli/client.h"

#include <chrono>
#include <sstream>
#include <thread>
#include <utility>

namespace dyt::cli {
namespace {

std::chrono::system_clock::time_point After(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

bool Contains(const std::string& text, const char* needle) {
  return text.find(needle) != std::string::npos;
}

std::string Seconds(double s) {
  std::ostringstream out;
  out << s << " s";
  return out.str();
}

}  // namespace

std::string UnavailableReason(const std::string& m) {
  if (Contains(m, "Connection refused") || Contains(m, "connection refused")) {
    return "connection refused";
  }
  if (Contains(m, "DNS resolution failed") || Contains(m, "Name or service not known") ||
      Contains(m, "not resolve") || Contains(m, "Domain name not found")) {
    return "cannot resolve the host name";
  }
  if (Contains(m, "No route to host")) return "no route to host";
  if (Contains(m, "Network is unreachable")) return "network is unreachable";
  if (Contains(m, "Socket closed") || Contains(m, "Connection reset") ||
      Contains(m, "Broken pipe") || Contains(m, "GOAWAY")) {
    return "the connection was lost";
  }
  return m.empty() ? "unavailable" : m;
}

DytClient::DytClient(ClientConfig config)
    : config_(std::move(config)),
      channel_(MakeChannel(config_)),
      stub_(v1::JobService::NewStub(channel_)),
      auth_stub_(v1::AuthService::NewStub(channel_)) {}

StatusOr<v1::CreateTokenResponse> DytClient::CreateToken(const v1::CreateTokenRequest& request) {
  v1::CreateTokenResponse response;
  DYT_RETURN_IF_ERROR(
      FromGrpc(auth_stub_->CreateToken(UnaryContext().get(), request, &response), "CreateToken"));
  return response;
}

StatusOr<std::vector<v1::TokenInfo>> DytClient::ListTokens() {
  v1::ListTokensResponse response;
  DYT_RETURN_IF_ERROR(
      FromGrpc(auth_stub_->ListTokens(UnaryContext().get(), v1::ListTokensRequest(), &response),
               "ListTokens"));
  return std::vector<v1::TokenInfo>(response.tokens().begin(), response.tokens().end());
}

StatusOr<v1::TokenInfo> DytClient::RevokeToken(const std::string& id) {
  v1::RevokeTokenRequest request;
  request.set_id(id);
  v1::TokenInfo response;
  DYT_RETURN_IF_ERROR(
      FromGrpc(auth_stub_->RevokeToken(UnaryContext().get(), request, &response), "RevokeToken"));
  return response;
}

StatusOr<v1::TokenInfo> DytClient::WhoAmI() {
  v1::TokenInfo response;
  DYT_RETURN_IF_ERROR(
      FromGrpc(auth_stub_->WhoAmI(UnaryContext().get(), v1::WhoAmIRequest(), &response), "WhoAmI"));
  return response;
}

std::unique_ptr<grpc::ClientContext> DytClient::UnaryContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(After(config_.rpc_timeout_s));
  context->set_wait_for_ready(true);
  return context;
}

Status DytClient::FromGrpc(const grpc::Status& status, const std::string& method) const {
  if (status.ok()) return Status::Ok();
  const std::string& server = config_.server;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: {
      const std::string reason = UnavailableReason(status.error_message());
      // A plaintext client at a TLS port sees the connection dropped; a TLS client whose CA
      // did not sign the server's certificate sees a handshake failure.
      std::string hint = "; is dyt-scheduler running? (--server/DYT_SERVER)";
      if (config_.tls_ca_file.empty() && reason == "the connection was lost") {
        hint += "; a scheduler serving TLS needs --ca-file (or DYT_CA_FILE, ca_file:)";
      } else if (!config_.tls_ca_file.empty() &&
                 (Contains(status.error_message(), "handshake") ||
                  Contains(status.error_message(), "SSL") ||
                  Contains(status.error_message(), "certificate"))) {
        hint = "; the TLS handshake failed: is " + config_.tls_ca_file +
               " the CA that signed the scheduler's certificate?";
      }
      return Unavailable("cannot reach the dyt scheduler at " + server + ": " + reason + hint);
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return DeadlineExceeded("the dyt scheduler at " + server + " did not answer " + method +
                              " within " + Seconds(config_.rpc_timeout_s));
    case grpc::StatusCode::UNAUTHENTICATED:
      return Status(StatusCode::kUnauthenticated,
                    "the dyt scheduler at " + server +
                        " refused the credentials: " + status.error_message() +
                        " (dytctl login --token ...; see docs/security.md)");
    case grpc::StatusCode::UNIMPLEMENTED:
      return Status(StatusCode::kUnimplemented, "the dyt scheduler at " + server +
                                                    " does not implement " + method +
                                                    " (an older dyt-scheduler?)");
    default:
      return Status(static_cast<StatusCode>(static_cast<int>(status.error_code())),
                    status.error_message());
  }
}

Status DytClient::Connect() {
  // Wait for READY; stop early at the first failed attempt (refused, unresolvable), which
  // would otherwise be retried with backoff until the deadline.
  const auto deadline = After(config_.connect_timeout_s);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
         state != GRPC_CHANNEL_SHUTDOWN) {
    if (!channel_->WaitForStateChange(state, deadline)) break;
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  if (state == GRPC_CHANNEL_READY) return Status::Ok();
  // Not connected: a fail-fast call says why (refused, unresolvable, ...).
  grpc::ClientContext context;
  context.set_deadline(After(1.0));
  v1::GetJobRequest request;
  request.set_id("-");
  v1::Job job;
  grpc::Status status = stub_->GetJob(&context, request, &job);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) return FromGrpc(status, "GetJob");
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Unavailable("cannot reach the dyt scheduler at " + config_.server +
                       ": no answer within " + Seconds(config_.connect_timeout_s) +
                       "; is dyt-scheduler running? (--server/DYT_SERVER)");
  }
  return Status::Ok();  // it answered after all
}

StatusOr<v1::Job> DytClient::Submit(const v1::JobSpec& spec, const std::string& client_request_id,
                                    const SubmitRetryPolicy& retry) {
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  request.set_client_request_id(client_request_id);
  double backoff = retry.first_backoff_s;
  for (int attempt = 1;; ++attempt) {
    v1::SubmitJobResponse response;
    grpc::Status status = stub_->SubmitJob(UnaryContext().get(), request, &response);
    if (status.ok()) return response.job();
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || attempt >= retry.attempts) {
      return FromGrpc(status, "SubmitJob");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(backoff * 1000)));
    backoff *= 2;
  }
}

StatusOr<v1::Job> DytClient::ValidateSubmission(const v1::JobSpec& spec) {
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  request.set_validate_only(true);
  v1::SubmitJobResponse response;
  grpc::Status status = stub_->SubmitJob(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "SubmitJob");
  return response.job();
}

StatusOr<v1::Job> DytClient::Get(const std::string& id) {
  v1::GetJobRequest request;
  request.set_id(id);
  v1::Job job;
  grpc::Status status = stub_->GetJob(UnaryContext().get(), request, &job);
  if (!status.ok()) return FromGrpc(status, "GetJob");
  return job;
}

StatusOr<std::vector<v1::Job>> DytClient::ListAll(v1::ListJobsRequest filter) {
  std::vector<v1::Job> jobs;
  filter.set_page_token("");
  if (filter.page_size() == 0) filter.set_page_size(500);
  while (true) {
    v1::ListJobsResponse response;
    grpc::Status status = stub_->ListJobs(UnaryContext().get(), filter, &response);
    if (!status.ok()) return FromGrpc(status, "ListJobs");
    for (auto& job : *response.mutable_jobs()) jobs.push_back(std::move(job));
    if (response.next_page_token().empty()) return jobs;
    filter.set_page_token(response.next_page_token());
  }
}

StatusOr<v1::Job> DytClient::Cancel(const std::string& id, const std::string& reason) {
  v1::CancelJobRequest request;
  request.set_id(id);
  request.set_reason(reason);
  v1::Job job;
  grpc::Status status = stub_->CancelJob(UnaryContext().get(), request, &job);
  if (!status.ok()) return FromGrpc(status, "CancelJob");
  return job;
}

StatusOr<std::vector<v1::CheckpointRecord>> DytClient::ListCheckpoints(const std::string& job_id) {
  v1::ListCheckpointsRequest request;
  request.set_job_id(job_id);
  v1::ListCheckpointsResponse response;
  grpc::Status status = stub_->ListCheckpoints(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "ListCheckpoints");
  return std::vector<v1::CheckpointRecord>(response.checkpoints().begin(),
                                           response.checkpoints().end());
}

StatusOr<std::vector<v1::WorkerStatus>> DytClient::ListWorkers() {
  v1::ListWorkersRequest request;
  v1::ListWorkersResponse response;
  grpc::Status status = stub_->ListWorkers(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "ListWorkers");
  return std::vector<v1::WorkerStatus>(response.workers().begin(), response.workers().end());
}

StatusOr<v1::WorkerStatus> DytClient::DrainWorker(const v1::DrainWorkerRequest& request) {
  v1::WorkerStatus worker;
  grpc::Status status = stub_->DrainWorker(UnaryContext().get(), request, &worker);
  if (!status.ok()) return FromGrpc(status, "DrainWorker");
  return worker;
}

Status DytClient::RemoveWorker(const std::string& worker_id) {
  v1::RemoveWorkerRequest request;
  request.set_worker_id(worker_id);
  v1::RemoveWorkerResponse response;
  grpc::Status status = stub_->RemoveWorker(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "RemoveWorker");
  return Status::Ok();
}

Status DytClient::Watch(const std::string& id,
                        const std::function<bool(const v1::Job&)>& on_message) {
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  v1::WatchJobRequest request;
  request.set_id(id);
  auto reader = stub_->WatchJob(&context, request);
  v1::WatchJobResponse response;
  while (reader->Read(&response)) {
    if (!on_message(response.job())) {
      context.TryCancel();
      (void)reader->Finish();
      return Status::Ok();
    }
  }
  return FromGrpc(reader->Finish(), "WatchJob");
}

Status DytClient::Logs(const v1::GetJobLogsRequest& request,
                       const std::function<bool(const v1::LogLine&)>& on_line,
                       const std::function<void(const std::string&)>& on_notice) {
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  if (!request.follow()) context.set_deadline(After(config_.rpc_timeout_s));
  auto reader = stub_->GetJobLogs(&context, request);
  v1::GetJobLogsResponse response;
  while (reader->Read(&response)) {
    if (!response.notice().empty() && on_notice) on_notice(response.notice());
    for (const auto& line : response.lines()) {
      if (!on_line(line)) {
        context.TryCancel();
        (void)reader->Finish();
        return Status::Ok();
      }
    }
  }
  return FromGrpc(reader->Finish(), "GetJobLogs");
}

Status DytClient::Download(
    const v1::DownloadCheckpointRequest& request,
    const std::function<Status(const v1::DownloadCheckpointResponse&)>& on_chunk) {
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  auto reader = stub_->DownloadCheckpoint(&context, request);
  v1::DownloadCheckpointResponse response;
  while (reader->Read(&response)) {
    Status s = on_chunk(response);
    if (!s.ok()) {
      context.TryCancel();
      (void)reader->Finish();
      return s;
    }
  }
  return FromGrpc(reader->Finish(), "DownloadCheckpoint");
}

}  // namespace dyt::cli
