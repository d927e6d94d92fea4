#include "trainer/dist/make_communicator.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "trainer/dist/file_kv_store.h"
#include "trainer/dist/gloo_communicator.h"
#include "trainer/dist/kv_store.h"
#include "trainer/dist/local_communicator.h"
#include "trainer/dist/tcp_kv_store.h"

namespace dyt::dist {

namespace {

// The largest world we accept: far beyond any CPU job, small enough that a typo shows.
constexpr int kMaxWorldSize = 1 << 16;
constexpr double kMaxTimeoutSeconds = 7 * 24 * 3600.0;

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

Status BadVar(const char* name, const std::string& value, const std::string& rule) {
  return InvalidArgument(std::string(name) + "='" + value + "': " + rule);
}

// A whole decimal integer in [lo, hi], nothing else (no spaces, no sign games).
StatusOr<int> ParseInt(const char* name, const std::string& value, long lo, long hi,
                       const std::string& rule) {
  if (value.empty()) return BadVar(name, value, "must be " + rule);
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (errno != 0 || end != value.c_str() + value.size() || value[0] == ' ' || value[0] == '+') {
    return BadVar(name, value, "must be an integer, " + rule);
  }
  if (v < lo || v > hi) return BadVar(name, value, "must be " + rule);
  return static_cast<int>(v);
}

// For a HOST:PORT rendezvous: the server's address, or INVALID_ARGUMENT saying what is wrong
// with it (a client needs a real port, not 0).
StatusOr<HostPort> TcpRendezvousAddress(const std::string& rdzv) {
  DYT_ASSIGN_OR_RETURN(HostPort server, ParseHostPort(rdzv));
  if (server.port == 0) {
    return InvalidArgument("address '" + rdzv + "': port 0 names no server; give its real port");
  }
  return server;
}

}  // namespace

bool IsSchedulerRendezvous(const std::string& rdzv) {
  return rdzv.rfind(kSchedulerRdzvScheme, 0) == 0;
}

StatusOr<std::string> SchedulerRendezvousAddress(const std::string& rdzv) {
  if (!IsSchedulerRendezvous(rdzv)) {
    return InvalidArgument("address '" + rdzv + "': must start with " + kSchedulerRdzvScheme);
  }
  const std::string address = rdzv.substr(std::string(kSchedulerRdzvScheme).size());
  DYT_ASSIGN_OR_RETURN(HostPort server, ParseHostPort(address));
  if (server.port == 0) {
    return InvalidArgument("address '" + rdzv + "': port 0 names no server; give its real port");
  }
  return address;
}

Status ValidateDistEnv(const DistEnv& env) {
  if (env.world_size < 1 || env.world_size > kMaxWorldSize) {
    return InvalidArgument("world_size " + std::to_string(env.world_size) + ": must be in [1, " +
                           std::to_string(kMaxWorldSize) + "]");
  }
  if (env.rank < 0 || env.rank >= env.world_size) {
    return InvalidArgument("rank " + std::to_string(env.rank) + ": must be in [0, world_size " +
                           std::to_string(env.world_size) + ")");
  }
  if (env.local_rank < 0 || env.local_rank >= env.world_size) {
    return InvalidArgument("local_rank " + std::to_string(env.local_rank) +
                           ": must be in [0, world_size " + std::to_string(env.world_size) + ")");
  }
  if (env.timeout.count() <= 0) {
    return InvalidArgument("timeout " + std::to_string(env.timeout.count()) +
                           " ms: must be positive");
  }
  if (env.world_size > 1) {
    if (env.rdzv.empty()) {
      return InvalidArgument(
          "rdzv: a rendezvous directory or HOST:PORT is needed when "
          "world_size is " +
          std::to_string(env.world_size));
    }
    if (IsSchedulerRendezvous(env.rdzv)) {
      if (StatusOr<std::string> a = SchedulerRendezvousAddress(env.rdzv); !a.ok()) {
        return InvalidArgument("rdzv: " + a.status().message());
      }
      if (env.job_id.empty()) {
        return InvalidArgument("job_id: needed with a scheduler:// rendezvous");
      }
      if (env.attempt < 0) {
        return InvalidArgument("attempt: needed (>= 0) with a scheduler:// rendezvous");
      }
    } else if (IsTcpRendezvous(env.rdzv)) {
      if (StatusOr<HostPort> server = TcpRendezvousAddress(env.rdzv); !server.ok()) {
        return InvalidArgument("rdzv: " + server.status().message());
      }
    }
    if (env.job.empty()) {
      return InvalidArgument("job: a rendezvous id (key prefix) is needed when world_size is " +
                             std::to_string(env.world_size));
    }
    DYT_RETURN_IF_ERROR(ValidateKvKey(env.job));
    if (env.host.empty()) return InvalidArgument("host: must name an interface or a host");
  }
  return Status::Ok();
}

StatusOr<DistEnv> DistEnvFromEnvironment() {
  DistEnv env;
  const std::string world_rule = "in [1, " + std::to_string(kMaxWorldSize) + "]";
  if (auto v = Env("DYT_WORLD_SIZE")) {
    DYT_ASSIGN_OR_RETURN(env.world_size,
                         ParseInt("DYT_WORLD_SIZE", *v, 1, kMaxWorldSize, world_rule));
  }
  const std::string rank_rule = "in [0, DYT_WORLD_SIZE=" + std::to_string(env.world_size) + ")";
  if (auto v = Env("DYT_RANK")) {
    DYT_ASSIGN_OR_RETURN(env.rank, ParseInt("DYT_RANK", *v, 0, env.world_size - 1, rank_rule));
  } else if (env.world_size > 1) {
    return InvalidArgument(
        "DYT_RANK: must be set when DYT_WORLD_SIZE=" + std::to_string(env.world_size) + " > 1");
  }
  env.local_rank = env.rank;
  if (auto v = Env("DYT_LOCAL_RANK")) {
    DYT_ASSIGN_OR_RETURN(env.local_rank,
                         ParseInt("DYT_LOCAL_RANK", *v, 0, env.world_size - 1, rank_rule));
  }
  if (auto v = Env("DYT_DIST_TIMEOUT_S")) {
    errno = 0;
    char* end = nullptr;
    const double s = std::strtod(v->c_str(), &end);
    if (v->empty() || errno != 0 || end != v->c_str() + v->size() || !std::isfinite(s) || s <= 0 ||
        s > kMaxTimeoutSeconds) {
      return BadVar("DYT_DIST_TIMEOUT_S", *v,
                    "must be a number of seconds > 0 and <= " +
                        std::to_string(static_cast<long>(kMaxTimeoutSeconds)));
    }
    env.timeout = std::chrono::milliseconds(std::max<long long>(1, std::llround(s * 1000.0)));
  }
  if (auto v = Env("DYT_JOB_ID")) {
    if (v->empty()) return BadVar("DYT_JOB_ID", *v, "must not be empty");
    env.job_id = *v;
  }
  if (auto v = Env("DYT_JOB_ATTEMPT")) {
    DYT_ASSIGN_OR_RETURN(env.attempt, ParseInt("DYT_JOB_ATTEMPT", *v, 0, 1L << 30, "in [0, 2^30]"));
  }
  if (auto v = Env("DYT_RDZV")) {
    env.rdzv = *v;
    if (IsSchedulerRendezvous(env.rdzv)) {
      if (StatusOr<std::string> a = SchedulerRendezvousAddress(env.rdzv); !a.ok()) {
        return BadVar("DYT_RDZV", *v, a.status().message());
      }
      if (env.job_id.empty()) {
        return InvalidArgument("DYT_JOB_ID: must be set with DYT_RDZV=" + *v);
      }
      if (env.attempt < 0) {
        return InvalidArgument("DYT_JOB_ATTEMPT: must be set with DYT_RDZV=" + *v);
      }
    } else if (IsTcpRendezvous(env.rdzv)) {
      if (StatusOr<HostPort> server = TcpRendezvousAddress(env.rdzv); !server.ok()) {
        return BadVar("DYT_RDZV", *v, server.status().message());
      }
    }
  }
  if (auto v = Env("DYT_RDZV_ID")) {
    env.job = *v;
    if (Status st = ValidateKvKey(env.job); !st.ok()) {
      return BadVar("DYT_RDZV_ID", *v,
                    "must be 1 to 200 characters from [A-Za-z0-9._-], not starting with '.'");
    }
  }
  if (auto v = Env("DYT_DIST_HOST")) {
    if (v->empty()) return BadVar("DYT_DIST_HOST", *v, "must name an interface or a host");
    env.host = *v;
  }
  if (env.world_size > 1) {
    if (env.rdzv.empty()) {
      return InvalidArgument(
          "DYT_RDZV: must be set (HOST:PORT of the rendezvous server, or a directory all "
          "ranks share) when "
          "DYT_WORLD_SIZE=" +
          std::to_string(env.world_size) + " > 1");
    }
    if (env.job.empty()) {
      return InvalidArgument(
          "DYT_RDZV_ID: must be set (a key prefix unique to the job attempt) "
          "when DYT_WORLD_SIZE=" +
          std::to_string(env.world_size) + " > 1");
    }
  }
  DYT_RETURN_IF_ERROR(ValidateDistEnv(env));
  return env;
}

StatusOr<std::unique_ptr<Communicator>> MakeHostCommunicator(
    const DistEnv& env, const KvStoreFactory& scheduler_store) {
  DYT_RETURN_IF_ERROR(ValidateDistEnv(env));
  if (env.world_size == 1) return std::unique_ptr<Communicator>(new LocalCommunicator());
  std::unique_ptr<KvStore> store;
  if (IsSchedulerRendezvous(env.rdzv)) {
    if (!scheduler_store) {
      return Status(StatusCode::kUnimplemented,
                    "DYT_RDZV=" + env.rdzv +
                        ": this program was built without the scheduler rendezvous (gRPC)");
    }
    DYT_ASSIGN_OR_RETURN(store, scheduler_store(env));
  } else if (IsTcpRendezvous(env.rdzv)) {
    DYT_ASSIGN_OR_RETURN(HostPort server, TcpRendezvousAddress(env.rdzv));
    DYT_ASSIGN_OR_RETURN(store, TcpKvStore::Connect(server, env.timeout));
  } else {
    DYT_ASSIGN_OR_RETURN(store, FileKvStore::Open(env.rdzv));
  }
  GlooOptions options;
  options.interface_or_host = env.host;
  options.timeout = env.timeout;
  DYT_ASSIGN_OR_RETURN(
      std::unique_ptr<GlooCommunicator> comm,
      GlooCommunicator::Create(*store, env.job, env.rank, env.world_size, options));
  return std::unique_ptr<Communicator>(std::move(comm));
}

}  // namespace dyt::dist
