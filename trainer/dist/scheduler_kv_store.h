// SchedulerKvStore: the rendezvous KvStore of a rank started by dyt-worker. Keys and values go
// to the scheduler's WorkerService (SetRendezvous / GetRendezvous, worker_service.proto),
// scoped to one job attempt, so that a restarted attempt never sees the previous one's keys
// and the store survives a worker (the scheduler keeps the values in RocksDB).
//
// dyt-train uses it when the environment says DYT_RDZV=scheduler://HOST:PORT, with
// DYT_JOB_ID and DYT_JOB_ATTEMPT naming the attempt (make_communicator.h). It is built only
// with the service dependencies (library dyt_scheduler_kv, gRPC); a -DDYT_TRAINER_ONLY=ON
// dyt-train refuses a scheduler:// rendezvous with UNIMPLEMENTED.
//
// Security (docs/security.md): when DYT_SCHEDULER_CA_FILE names the scheduler's CA certificate
// the connection is TLS, and the worker token in DYT_SCHEDULER_TOKEN_FILE goes with every call
// as a bearer token (dyt-worker sets both from its --ca-file/--token-file). Without them the
// connection is plaintext (a scheduler started with --insecure).
//
// Failures: Set and Get retry UNAVAILABLE (a scheduler restarting, a connection not yet up)
// with a short backoff until their deadline (Set: the store's `timeout`; Get: its argument),
// never past it. Get answers DEADLINE_EXCEEDED naming the key, the attempt and the address
// when the key never came; other errors come back as the scheduler gave them.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "trainer/dist/kv_store.h"
#include "trainer/dist/make_communicator.h"

namespace dyt::dist {

class SchedulerKvStore : public KvStore {
 public:
  // `address` is HOST:PORT of the scheduler's WorkerService; job_id non-empty, attempt >= 0.
  // Does not connect yet (gRPC connects on the first call). `timeout` bounds each Set.
  // `ca_file`/`token_file` empty: plaintext; else TLS with the bearer token (may be empty).
  static StatusOr<std::unique_ptr<SchedulerKvStore>> Create(const std::string& address,
                                                            const std::string& job_id, int attempt,
                                                            std::chrono::milliseconds timeout,
                                                            const std::string& ca_file = "",
                                                            const std::string& token_file = "");
  ~SchedulerKvStore() override;

  Status Set(const std::string& key, const std::string& value) override;
  StatusOr<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;

 private:
  struct Impl;
  explicit SchedulerKvStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The KvStoreFactory for MakeHostCommunicator: a SchedulerKvStore for env.rdzv
// ("scheduler://HOST:PORT"), env.job_id and env.attempt, with env.timeout.
StatusOr<std::unique_ptr<KvStore>> MakeSchedulerKvStore(const DistEnv& env);

}  // namespace dyt::dist
