#include "services/worker/session.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <random>

#include "common/grpc_credentials.h"
#include "dyt/v1/worker_service.grpc.pb.h"

namespace dyt::worker {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  // Notice a scheduler host that vanished without closing the connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect promptly; our own loop does the backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(address, std::move(credentials), args);
}

// "PERMISSION_DENIED: token of worker w1 may not connect as w2" (gRPC's codes are ours).
std::string StatusText(const grpc::Status& s) {
  return std::string(StatusCodeName(static_cast<StatusCode>(s.error_code()))) + ": " +
         s.error_message();
}

}  // namespace

Session::Session(SessionOptions options, Outbox* outbox, SessionHandlers handlers)
    : options_(std::move(options)), outbox_(outbox), handlers_(std::move(handlers)) {
  disconnected_since_ = Clock::now();
  token_ = options_.token;
}

Session::~Session() { Shutdown(milliseconds(0)); }

void Session::Start() {
  thread_ = std::thread([this] { Loop(); });
}

std::chrono::milliseconds Session::disconnected_for() const {
  if (connected_) return milliseconds(0);
  std::lock_guard<std::mutex> lock(mu_);
  return std::chrono::duration_cast<milliseconds>(Clock::now() - disconnected_since_);
}

std::string Session::artifact_root() const {
  std::lock_guard<std::mutex> lock(mu_);
  return artifact_root_;
}

void Session::Shutdown(milliseconds flush_timeout) {
  const Clock::time_point deadline = Clock::now() + flush_timeout;
  while (connected_ && !outbox_->empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_context_ != nullptr)
      static_cast<grpc::ClientContext*>(current_context_)->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void Session::Loop() {
  std::mt19937_64 rng(std::random_device{}());
  milliseconds backoff = options_.min_backoff;
  std::string logged_refusal;  // the refusal last logged as an error, and when
  Clock::time_point logged_at;
  while (!stopping_) {
    const Clock::time_point began = Clock::now();
    RunOnce();
    if (stopping_) break;
    if (duplicate()) {
      spdlog::error("scheduler {}: refused this worker ({}); not reconnecting", options_.scheduler,
                    refused());
      break;
    }
    const std::string why = refused();
    // A session that lasted a while resets the backoff.
    if (Clock::now() - began > std::chrono::seconds(10)) backoff = options_.min_backoff;
    if (!why.empty()) {
      // The same token cannot succeed; a new one in the token file may, at once (written before
      // the old one was revoked, it lets the worker back within the scheduler's heartbeat
      // timeout: its jobs keep running). The daemon stays up, saying so (here, once per reason
      // and then every 10 minutes, and in dyt_worker_scheduler_refused), rather than exiting
      // into a restart loop that no metric shows.
      if (ReloadToken()) continue;
      if (why != logged_refusal || Clock::now() - logged_at > std::chrono::minutes(10)) {
        const std::string& id = options_.registration.worker_id();
        spdlog::error(
            "scheduler {}: refused worker {} ({}); trying again when {} changes, or in {:.3g} s. "
            "Give it a valid worker token for this worker id (dytctl token create --user {} "
            "--role worker; docs/security.md)",
            options_.scheduler, id, why,
            options_.token_file.empty() ? "its token file" : options_.token_file,
            options_.refused_backoff.count() / 1000.0, id);
        logged_refusal = why;
        logged_at = Clock::now();
      }
      const Clock::time_point until = Clock::now() + options_.refused_backoff;
      Clock::time_point next_read = Clock::now() + std::chrono::seconds(1);
      while (!stopping_ && Clock::now() < until) {
        std::this_thread::sleep_for(milliseconds(20));
        if (Clock::now() >= next_read) {
          if (ReloadToken()) break;
          next_read = Clock::now() + std::chrono::seconds(1);
        }
      }
      continue;
    }
    std::uniform_int_distribution<int64_t> jitter(0, backoff.count() / 2);
    const milliseconds wait = backoff + milliseconds(jitter(rng));
    spdlog::info("scheduler {}: reconnecting in {} ms", options_.scheduler, wait.count());
    const Clock::time_point until = Clock::now() + wait;
    while (!stopping_ && Clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool Session::ReloadToken() {
  if (options_.token_file.empty()) return false;
  auto read = ReadTokenFile(options_.token_file);
  if (!read.ok()) {
    spdlog::warn("--token-file: {}", read.status().message());
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (*read == token_) return false;
  spdlog::info("{}: a new token: trying it", options_.token_file);
  token_ = *read;
  return true;
}

void Session::RunOnce() {
  ReloadToken();  // every connect uses the file's newest token (a rotation needs no restart)
  std::string token;
  {
    std::lock_guard<std::mutex> lock(mu_);
    token = token_;
  }
  auto channel = MakeChannel(options_.scheduler, ClientCredentials(options_.ca_pem, token));
  auto stub = v1::WorkerService::NewStub(channel);
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    current_context_ = &context;
  }
  auto clear_context = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    current_context_ = nullptr;
  };
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::SchedulerMessage>> stream =
      stub->Connect(&context);

  v1::WorkerMessage hello;
  *hello.mutable_register_() = options_.registration;
  hello.mutable_register_()->set_shutting_down(shutting_down_.load());
  for (const v1::RunningRank& r : handlers_.running())
    *hello.mutable_register_()->add_running() = r;
  for (const v1::RunningRank& r : outbox_->PendingExits())
    *hello.mutable_register_()->add_running() = r;
  v1::SchedulerMessage first;
  // Read the answer on a helper thread so a scheduler that never answers costs
  // register_timeout, not forever.
  std::atomic<bool> answered{false};
  bool got_first = false;
  std::thread first_reader;
  if (stream->Write(hello)) {
    first_reader = std::thread([&] {
      got_first = stream->Read(&first);
      answered = true;
    });
    const Clock::time_point until = Clock::now() + options_.register_timeout;
    while (!answered && !stopping_ && Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (!answered) context.TryCancel();
    first_reader.join();
  }
  if (!got_first || !first.has_registered()) {
    if (!stopping_) {
      // A stream the scheduler ended carries its status (PERMISSION_DENIED for a token of
      // another worker): cancelling it first would turn that into CANCELLED.
      if (got_first || !answered) context.TryCancel();
      const grpc::Status s = stream->Finish();
      // A plaintext worker at a TLS port sees its connection dropped, nothing more.
      const bool maybe_tls = options_.ca_pem.empty() &&
                             s.error_code() == grpc::StatusCode::UNAVAILABLE &&
                             (s.error_message().find("Socket closed") != std::string::npos ||
                              s.error_message().find("Connection reset") != std::string::npos);
      spdlog::warn("scheduler {}: could not register: {}{}", options_.scheduler,
                   got_first ? "first answer was not `registered`"
                             : (s.ok() ? "stream closed" : StatusText(s)),
                   maybe_tls ? " (a scheduler serving TLS needs --ca-file)" : "");
      NoteRefusal(s);
    }
    clear_context();
    return;
  }
  const v1::Registered& registered = first.registered();
  const milliseconds heartbeat(std::max(
      50, registered.heartbeat_interval_ms() > 0 ? registered.heartbeat_interval_ms() : 1000));
  {
    std::lock_guard<std::mutex> lock(mu_);
    artifact_root_ = registered.artifact_root();
    refused_.clear();
  }
  ++sessions_;
  connected_ = true;
  spdlog::info("scheduler {}: registered as {} (heartbeat every {} ms)", options_.scheduler,
               registered.worker_id(), heartbeat.count());

  std::atomic<bool> broken{false};
  std::thread reader([&] {
    v1::SchedulerMessage m;
    while (stream->Read(&m)) {
      if (m.has_assign()) {
        handlers_.assign(m.assign());
      } else if (m.has_stop()) {
        handlers_.stop(m.stop());
      } else if (m.has_registered()) {
        spdlog::warn("scheduler {}: unexpected second `registered`", options_.scheduler);
      }
    }
    broken = true;
  });

  Clock::time_point next_heartbeat = Clock::now();
  while (!broken && !stopping_) {
    std::vector<v1::WorkerMessage> batch;
    if (Clock::now() >= next_heartbeat) {
      v1::WorkerMessage hb;
      v1::Heartbeat* beat = hb.mutable_heartbeat();  // set even with nothing running
      for (const v1::RunningRank& r : handlers_.running()) *beat->add_running() = r;
      batch.push_back(std::move(hb));
      next_heartbeat = Clock::now() + heartbeat;
    }
    for (v1::WorkerMessage& m : outbox_->Take()) batch.push_back(std::move(m));
    size_t sent = 0;
    for (; sent < batch.size(); ++sent) {
      if (!stream->Write(batch[sent])) break;
    }
    if (sent < batch.size()) {
      std::vector<v1::WorkerMessage> rest;
      for (size_t i = sent; i < batch.size(); ++i) {
        if (!batch[i].has_heartbeat()) rest.push_back(std::move(batch[i]));
      }
      outbox_->Requeue(std::move(rest));
      break;
    }
    const milliseconds until_heartbeat =
        std::chrono::duration_cast<milliseconds>(next_heartbeat - Clock::now());
    outbox_->Wait(std::clamp(until_heartbeat, milliseconds(1), milliseconds(100)));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = false;
    disconnected_since_ = Clock::now();
  }
  stream->WritesDone();
  // As above: a stream the scheduler ended keeps its status (UNAUTHENTICATED once the token is
  // revoked). One still open after a write failed is cancelled after a moment.
  const Clock::time_point cancel_at = Clock::now() + milliseconds(stopping_ ? 0 : 2000);
  while (!broken && Clock::now() < cancel_at) std::this_thread::sleep_for(milliseconds(10));
  if (!broken) context.TryCancel();
  reader.join();
  const grpc::Status s = stream->Finish();
  clear_context();
  if (!stopping_) {
    spdlog::warn("scheduler {}: session ended: {}", options_.scheduler,
                 s.ok() ? std::string("closed by the scheduler") : StatusText(s));
    NoteRefusal(s);
  }
}

void Session::NoteRefusal(const grpc::Status& s) {
  // Refusals that trying again with the same token cannot change: a token not good for this
  // worker, or another live worker under the same id. Anything else (unreachable, a broken
  // stream) says nothing about the token: the last refusal no longer holds.
  const bool refusal = s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                       s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                       s.error_code() == grpc::StatusCode::ALREADY_EXISTS;
  std::lock_guard<std::mutex> lock(mu_);
  refused_ = refusal ? StatusText(s) : "";
  duplicate_ = s.error_code() == grpc::StatusCode::ALREADY_EXISTS;
}

std::string Session::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

bool Session::duplicate() const {
  std::lock_guard<std::mutex> lock(mu_);
  return duplicate_;
}

}  // namespace dyt::worker
