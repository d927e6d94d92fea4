#include "trainer/dist/scheduler_kv_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "common/grpc_credentials.h"
#include "dyt/v1/worker_service.grpc.pb.h"

namespace dyt::dist {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The longest single GetRendezvous wait we ask for (the service's limit is 600000 ms); longer
// waits are several calls, so a scheduler restart costs one retry, not the whole wait.
constexpr milliseconds kMaxCallWait{60000};
// How much longer than the server-side wait the gRPC deadline is.
constexpr milliseconds kCallSlack{5000};

Status FromGrpc(const grpc::Status& s, const std::string& what) {
  return Status(static_cast<StatusCode>(s.error_code()), what + ": " + s.error_message());
}

// gRPC takes system_clock deadlines only.
std::chrono::system_clock::time_point GrpcDeadline(Clock::time_point steady) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(steady - Clock::now());
}

bool Retryable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;  // the call's own deadline
}

}  // namespace

struct SchedulerKvStore::Impl {
  std::string address;
  std::string job_id;
  int attempt = 0;
  milliseconds timeout{0};
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::WorkerService::Stub> stub;

  std::string Name() const {
    return "scheduler rendezvous " + address + " (job " + job_id + " attempt " +
           std::to_string(attempt) + ")";
  }
  // Sleeps a growing backoff, never past `deadline`.
  static void Backoff(milliseconds* delay, Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    std::this_thread::sleep_for(std::max(milliseconds(0), std::min(*delay, left)));
    *delay = std::min(*delay * 2, milliseconds(2000));
  }
};

SchedulerKvStore::SchedulerKvStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SchedulerKvStore::~SchedulerKvStore() = default;

StatusOr<std::unique_ptr<SchedulerKvStore>> SchedulerKvStore::Create(
    const std::string& address, const std::string& job_id, int attempt, milliseconds timeout,
    const std::string& ca_file, const std::string& token_file) {
  if (address.empty()) return InvalidArgument("address: HOST:PORT of the scheduler is needed");
  if (job_id.empty()) return InvalidArgument("job_id: must not be empty");
  if (attempt < 0) return InvalidArgument("attempt: must be >= 0");
  if (timeout.count() <= 0) return InvalidArgument("timeout: must be positive");
  auto impl = std::make_unique<Impl>();
  impl->address = address;
  impl->job_id = job_id;
  impl->attempt = attempt;
  impl->timeout = timeout;
  std::string ca_pem;
  std::string token;
  if (!ca_file.empty()) {
    DYT_ASSIGN_OR_RETURN(ca_pem, ReadSmallFile(ca_file, "DYT_SCHEDULER_CA_FILE"));
  }
  if (!token_file.empty()) {
    DYT_ASSIGN_OR_RETURN(token, ReadTokenFile(token_file));
  }
  impl->channel = grpc::CreateChannel(address, ClientCredentials(ca_pem, token));
  impl->stub = v1::WorkerService::NewStub(impl->channel);
  return std::unique_ptr<SchedulerKvStore>(new SchedulerKvStore(std::move(impl)));
}

Status SchedulerKvStore::Set(const std::string& key, const std::string& value) {
  DYT_RETURN_IF_ERROR(ValidateKvKey(key));
  v1::SetRendezvousRequest request;
  request.set_job_id(impl_->job_id);
  request.set_attempt(impl_->attempt);
  request.set_key(key);
  request.set_value(value);
  const Clock::time_point deadline = Clock::now() + impl_->timeout;
  milliseconds delay{50};
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(GrpcDeadline(std::min(deadline, Clock::now() + milliseconds(10000))));
    context.set_wait_for_ready(true);
    v1::SetRendezvousResponse response;
    const grpc::Status s = impl_->stub->SetRendezvous(&context, request, &response);
    if (s.ok()) return Status::Ok();
    if (!Retryable(s)) return FromGrpc(s, impl_->Name() + ": set '" + key + "'");
    if (Clock::now() >= deadline) {
      return DeadlineExceeded(impl_->Name() + ": set '" + key + "' did not succeed within " +
                              std::to_string(impl_->timeout.count()) + " ms: " + s.error_message());
    }
    Impl::Backoff(&delay, deadline);
  }
}

StatusOr<std::string> SchedulerKvStore::Get(const std::string& key, milliseconds timeout) {
  DYT_RETURN_IF_ERROR(ValidateKvKey(key));
  const Clock::time_point deadline = Clock::now() + std::max(timeout, milliseconds(0));
  milliseconds delay{50};
  std::string last_error;
  while (true) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    const milliseconds wait = std::clamp(left, milliseconds(0), kMaxCallWait);
    v1::GetRendezvousRequest request;
    request.set_job_id(impl_->job_id);
    request.set_attempt(impl_->attempt);
    request.set_key(key);
    request.set_timeout_ms(static_cast<int32_t>(wait.count()));
    grpc::ClientContext context;
    context.set_deadline(GrpcDeadline(Clock::now() + wait + kCallSlack));
    v1::GetRendezvousResponse response;
    const grpc::Status s = impl_->stub->GetRendezvous(&context, request, &response);
    if (s.ok()) return response.value();
    if (!Retryable(s)) return FromGrpc(s, impl_->Name() + ": get '" + key + "'");
    last_error = s.error_message();
    if (Clock::now() >= deadline) {
      return DeadlineExceeded(impl_->Name() + ": key '" + key + "' was not set within " +
                              std::to_string(timeout.count()) + " ms (" + last_error + ")");
    }
    // The server's own DEADLINE_EXCEEDED before ours: ask again at once; UNAVAILABLE: back off.
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) Impl::Backoff(&delay, deadline);
  }
}

namespace {
std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}
}  // namespace

StatusOr<std::unique_ptr<KvStore>> MakeSchedulerKvStore(const DistEnv& env) {
  DYT_ASSIGN_OR_RETURN(std::string address, SchedulerRendezvousAddress(env.rdzv));
  DYT_ASSIGN_OR_RETURN(std::unique_ptr<SchedulerKvStore> store,
                       SchedulerKvStore::Create(address, env.job_id, env.attempt, env.timeout,
                                                Getenv("DYT_SCHEDULER_CA_FILE"),
                                                Getenv("DYT_SCHEDULER_TOKEN_FILE")));
  return std::unique_ptr<KvStore>(std::move(store));
}

}  // namespace dyt::dist
