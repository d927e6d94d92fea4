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
// With no variables set, a program is the single rank of a world of one.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "trainer/dist/communicator.h"

namespace dyt::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string rdzv;  // HOST:PORT of a TcpKvStoreServer, or a directory for the FileKvStore
  std::string job;   // key prefix: the job attempt
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  std::string host = "127.0.0.1";
};

// Reads and validates the variables above. INVALID_ARGUMENT naming the variable, its value
// and the rule it breaks.
StatusOr<DistEnv> DistEnvFromEnvironment();

// Checks the fields of `env` against the same rules (for DistEnv built in code).
Status ValidateDistEnv(const DistEnv& env);

// World size 1: a LocalCommunicator, with no rendezvous. Otherwise a GlooCommunicator that
// meets its peers under the prefix env.job through a TcpKvStore connected to env.rdzv (the
// connection retried for up to env.timeout, since the server may start later) when it is
// HOST:PORT, else through a FileKvStore in the directory env.rdzv.
StatusOr<std::unique_ptr<Communicator>> MakeHostCommunicator(const DistEnv& env);

}  // namespace dyt::dist
