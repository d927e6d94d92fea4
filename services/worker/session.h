// Session: the worker's WorkerService.Connect stream to the scheduler.
//
// One thread keeps a session up: it opens the stream, sends `register` (with the ranks the
// worker still runs, from `running`), and waits for `registered` (anything else first is an
// error and the stream is dropped). Then it writes a heartbeat (with the running ranks) every
// registered.heartbeat_interval_ms and everything the Outbox holds, while a reader thread
// hands each `assign` and `stop` to the handlers. When the stream breaks (either side, or a
// write fails), it reconnects with exponential backoff (min_backoff doubling to max_backoff,
// plus up to 50% random jitter) and registers again; messages not written are requeued. A
// refused token is not sent again: the session waits for token_file to change (read every
// second), or refused_backoff at most. Every connect reads token_file first.
//
// connected() is true between `registered` and the stream breaking; disconnected_for() is how
// long it has been false (0 while connected), what the orphan timeout is measured on.
#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dyt/v1/worker_service.pb.h"
#include "services/worker/outbox.h"

namespace dyt::worker {

struct SessionOptions {
  std::string scheduler;  // HOST:PORT
  std::string ca_pem;     // TLS roots for the scheduler; empty: plaintext
  std::string token;      // worker token, sent as a bearer token over TLS
  // Where `token` came from: read again before each connect, and every second while the
  // scheduler refuses the token (a rotated or newly issued token is taken up without a
  // restart). Empty: never re-read.
  std::string token_file;
  // The wait before trying again after a refused token (the same token cannot succeed; a new
  // one is written by a person or a secret manager, at that pace).
  std::chrono::milliseconds refused_backoff{30000};
  v1::RegisterWorker registration;  // `running` is filled at each connect
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds register_timeout{10000};  // wait for `registered`
};

struct SessionHandlers {
  std::function<void(const v1::Assignment&)> assign;
  std::function<void(const v1::StopJob&)> stop;
  std::function<std::vector<v1::RunningRank>()> running;
};

class Session {
 public:
  Session(SessionOptions options, Outbox* outbox, SessionHandlers handlers);
  ~Session();  // Shutdown(0)
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start();
  // Waits up to `flush_timeout` for the Outbox to be sent (when connected), then closes the
  // stream and joins the threads.
  void Shutdown(std::chrono::milliseconds flush_timeout);

  bool connected() const { return connected_.load(); }
  std::chrono::milliseconds disconnected_for() const;
  std::string artifact_root() const;
  int sessions_opened() const { return sessions_.load(); }
  // Why the scheduler refused this worker at its last try, "CODE: message"; empty once it
  // registers. UNAUTHENTICATED (a token unknown, expired or revoked) or PERMISSION_DENIED (not
  // a worker token, or another worker's): the session tries again every refused_backoff with
  // the token file's current token. ALREADY_EXISTS (another live worker under this id): it
  // stops trying, and duplicate() says so: the daemon should exit.
  std::string refused() const;
  bool duplicate() const;
  // From now on every registration says the worker is shutting down (a reconnect while its
  // trainers stop must not make it take work again).
  void SetShuttingDown() { shutting_down_ = true; }

 private:
  void Loop();
  // One session; returns when the stream broke or shutdown was requested.
  void RunOnce();
  void NoteRefusal(const grpc::Status& s);
  // token_ from options_.token_file, when set; true when it changed.
  bool ReloadToken();

  SessionOptions options_;
  Outbox* outbox_;
  SessionHandlers handlers_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> connected_{false};
  std::atomic<int> sessions_{0};
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point disconnected_since_;
  std::string artifact_root_;
  std::string refused_;              // under mu_
  bool duplicate_ = false;           // under mu_
  std::string token_;                // under mu_: options_.token, or the token file's newest
  void* current_context_ = nullptr;  // grpc::ClientContext* of the live stream, under mu_
};

}  // namespace dyt::worker
