// Where a rank learns its place in the job, and the host Communicator built from it.
//
// A launcher (dyt-launch, or dyt-worker) starts each rank with these environment variables:
//   DYT_RANK          global rank, 0 <= rank < world size                 (default 0)
//   DYT_WORLD_SIZE    number of ranks, >= 1                               (default 1)
//   DYT_LOCAL_RANK    rank on this machine, 0 <= local rank < world size  (default = rank)
//   DYT_RDZV          where the ranks meet; needed when the world size is > 1. Either
//                     HOST:PORT (also tcp://HOST:PORT, [IPV6]:PORT) of a TcpKvStoreServer,
//                     which dyt-launch on node rank 0 serves (see tcp_kv_store.h for how
//                     the two forms are told apart), or a directory shared by all ranks
//                     (FileKvStore)
//   DYT_RDZV_ID       key prefix naming the job attempt, a KvStore key (letters, digits, '.',
//                     '_', '-'); needed when the world size is > 1; never reused by another
//                     attempt, so that no rank reads a stale address
//   DYT_DIST_TIMEOUT_S  rendezvous and collective timeout in seconds, > 0, may be
//                     fractional (default 300: keep it above the longest pause of one rank
//                     between collectives, such as writing a checkpoint)
//   DYT_DIST_HOST     interface name or host/IP this rank listens on for Gloo (default
//                     127.0.0.1, right for one machine only)
//   DYT_JOB_ID        the scheduler's job id; needed with DYT_RDZV=scheduler://...
//   DYT_JOB_ATTEMPT   the job attempt, an integer >= 0; needed with DYT_RDZV=scheduler://...
// DYT_RDZV may also be scheduler://HOST:PORT (what dyt-worker sets): the scheduler's
// WorkerService keeps the keys of the attempt (DYT_JOB_ID, DYT_JOB_ATTEMPT); see
// scheduler_kv_store.h. This library has no gRPC: MakeHostCommunicator opens such a store
// only through the factory its caller passes (dyt-train built with the services does).
// With no variables set, a program is the single rank of a world of one.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "trainer/dist/communicator.h"
#include "trainer/dist/kv_store.h"

namespace dyt::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string rdzv;  // HOST:PORT of a TcpKvStoreServer, or a directory for the FileKvStore
  std::string job;   // key prefix: the job attempt
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  std::string host = "127.0.0.1";
  std::string job_id;  // DYT_JOB_ID (scheduler rendezvous)
  int attempt = -1;    // DYT_JOB_ATTEMPT (scheduler rendezvous); -1: not set
};

// The scheme prefix of a scheduler rendezvous.
inline constexpr char kSchedulerRdzvScheme[] = "scheduler://";

// True when `rdzv` starts with scheduler://.
bool IsSchedulerRendezvous(const std::string& rdzv);
// HOST:PORT of a scheduler:// rendezvous, or INVALID_ARGUMENT saying what is wrong with it.
StatusOr<std::string> SchedulerRendezvousAddress(const std::string& rdzv);

// Opens the rendezvous store of a scheduler:// DYT_RDZV (scheduler_kv_store.h's
// MakeSchedulerKvStore). Empty when the program was built without one.
using KvStoreFactory = std::function<StatusOr<std::unique_ptr<KvStore>>(const DistEnv& env)>;

// Reads and validates the variables above. INVALID_ARGUMENT naming the variable, its value
// and the rule it breaks.
StatusOr<DistEnv> DistEnvFromEnvironment();

// Checks the fields of `env` against the same rules (for DistEnv built in code).
Status ValidateDistEnv(const DistEnv& env);

// World size 1: a LocalCommunicator, with no rendezvous. Otherwise a GlooCommunicator that
// meets its peers under the prefix env.job through: the store `scheduler_store` opens when
// env.rdzv is scheduler://HOST:PORT (UNIMPLEMENTED when that factory is empty); a TcpKvStore
// connected to env.rdzv (the connection retried for up to env.timeout, since the server may
// start later) when it is HOST:PORT; else a FileKvStore in the directory env.rdzv.
StatusOr<std::unique_ptr<Communicator>> MakeHostCommunicator(
    const DistEnv& env, const KvStoreFactory& scheduler_store = nullptr);

}  // namespace dyt::dist
