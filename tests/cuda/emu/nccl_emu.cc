// Host emulation of the NCCL calls NcclCommunicator makes (tests/cuda/emu/README.md), so the
// CUDA backend's data-parallel path runs with several ranks in one process (threads), which no
// single-GPU machine can do with real NCCL.
//
// The emulated runtime runs every "stream" operation at once, so a collective here is
// synchronous too: each rank's call waits until every rank of the communicator has made its
// matching call, the last one to arrive computes the result over all ranks' buffers in rank
// order (deterministic, like NCCL's ring for a fixed world) and writes every rank's output,
// then all return. Every rank must issue the same collective (kind, count, type, operator,
// root) as the n-th call: a mismatch, which on real GPUs would hang or pair unrelated
// operations, fails every rank of that call with ncclInvalidUsage and says what differed.
//
// The registry of groups (by unique id) is process-wide state: it stands in for the network
// that real NCCL ranks meet over, and lives only in this test emulation.
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

// How long a rank waits for its peers in one call: $DYT_NCCL_EMU_TIMEOUT_S, else 120 s. (Real
// NCCL waits forever; the emulation's calls are synchronous, so a test of a failing rank sets
// it low.)
std::chrono::milliseconds Timeout() {
  const char* env = std::getenv("DYT_NCCL_EMU_TIMEOUT_S");
  const double s = env != nullptr ? std::atof(env) : 0.0;
  return std::chrono::milliseconds(int64_t((s > 0 ? s : 120.0) * 1000));
}

enum class Kind { kAllReduce, kBroadcast, kAllGather, kReduceScatter };

struct Call {
  Kind kind;
  const float* send;
  float* recv;
  size_t count;
  ncclDataType_t type;
  ncclRedOp_t op;
  int root;
};

struct Group {
  explicit Group(int n) : nranks(n), calls(size_t(n)) {}
  const int nranks;
  std::mutex mu;
  std::condition_variable cv;
  int joined = 0;
  int arrived = 0;         // ranks waiting in the current collective
  int64_t generation = 0;  // collectives completed
  std::vector<Call> calls;
  ncclResult_t result = ncclSuccess;
  std::string error;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Group>> groups;
};

Registry& TheRegistry() {
  static Registry r;  // see the file comment
  return r;
}

thread_local std::string last_error;

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kAllReduce:
      return "AllReduce";
    case Kind::kBroadcast:
      return "Broadcast";
    case Kind::kAllGather:
      return "AllGather";
    case Kind::kReduceScatter:
      return "ReduceScatter";
  }
  return "?";
}

// The reduction of element i over every rank's `send`, in rank order.
float Reduce(const std::vector<Call>& calls, size_t i, ncclRedOp_t op) {
  float acc = calls[0].send[i];
  for (size_t r = 1; r < calls.size(); ++r) {
    acc = op == ncclMax ? std::max(acc, calls[r].send[i]) : acc + calls[r].send[i];
  }
  if (op == ncclAvg) acc /= float(calls.size());
  return acc;
}

// Runs the collective all ranks have now posted (the group's lock held).
void Execute(Group& g) {
  const Call& c0 = g.calls[0];
  for (int r = 1; r < g.nranks; ++r) {
    const Call& c = g.calls[size_t(r)];
    if (c.kind != c0.kind || c.count != c0.count || c.type != c0.type || c.op != c0.op ||
        c.root != c0.root) {
      g.result = ncclInvalidUsage;
      g.error = std::string("emulated NCCL: collective #") + std::to_string(g.generation) +
                " differs between ranks: rank 0 " + KindName(c0.kind) + " of " +
                std::to_string(c0.count) + ", rank " + std::to_string(r) + " " + KindName(c.kind) +
                " of " + std::to_string(c.count);
      return;
    }
  }
  if (c0.type != ncclFloat32) {
    g.result = ncclInvalidArgument;
    g.error = "emulated NCCL: only float32 is emulated";
    return;
  }
  const size_t n = c0.count, world = size_t(g.nranks);
  switch (c0.kind) {
    case Kind::kAllReduce: {
      std::vector<float> out(n);
      for (size_t i = 0; i < n; ++i) out[i] = Reduce(g.calls, i, c0.op);
      for (const Call& c : g.calls) std::memcpy(c.recv, out.data(), n * sizeof(float));
      break;
    }
    case Kind::kBroadcast: {
      const std::vector<float> src(g.calls[size_t(c0.root)].send,
                                   g.calls[size_t(c0.root)].send + n);
      for (const Call& c : g.calls) std::memcpy(c.recv, src.data(), n * sizeof(float));
      break;
    }
    case Kind::kAllGather: {
      std::vector<float> out(n * world);
      for (size_t r = 0; r < world; ++r) {
        std::memcpy(out.data() + r * n, g.calls[r].send, n * sizeof(float));
      }
      for (const Call& c : g.calls) std::memcpy(c.recv, out.data(), out.size() * sizeof(float));
      break;
    }
    case Kind::kReduceScatter: {
      std::vector<float> all(n * world);
      for (size_t i = 0; i < all.size(); ++i) all[i] = Reduce(g.calls, i, c0.op);
      for (size_t r = 0; r < world; ++r) {
        std::memcpy(g.calls[r].recv, all.data() + r * n, n * sizeof(float));
      }
      break;
    }
  }
  g.result = ncclSuccess;
  g.error.clear();
}

}  // namespace

struct ncclComm {
  std::shared_ptr<Group> group;
  int rank = 0;
};

namespace {

ncclResult_t Collective(ncclComm_t comm, const Call& call) {
  if (comm == nullptr) return ncclInvalidArgument;
  Group& g = *comm->group;
  std::unique_lock<std::mutex> lock(g.mu);
  const int64_t gen = g.generation;
  g.calls[size_t(comm->rank)] = call;
  if (++g.arrived == g.nranks) {
    Execute(g);
    g.arrived = 0;
    ++g.generation;
    g.cv.notify_all();
  } else if (!g.cv.wait_for(lock, Timeout(), [&] { return g.generation != gen; })) {
    last_error = "emulated NCCL: a peer never joined collective #" + std::to_string(gen);
    return ncclSystemError;
  }
  if (g.result != ncclSuccess) last_error = g.error;
  return g.result;
}

}  // namespace

extern "C" {

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  static std::mutex mu;
  static uint64_t next = 0;  // with the clock: a fresh id per call
  std::lock_guard<std::mutex> lock(mu);
  std::memset(id->internal, 0, sizeof(id->internal));
  const std::string key =
      "emu-" + std::to_string(++next) + "-" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  std::memcpy(id->internal, key.data(), std::min(key.size(), sizeof(id->internal) - 1));
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  const std::string key(id.internal, strnlen(id.internal, sizeof(id.internal)));
  std::shared_ptr<Group> g;
  {
    Registry& reg = TheRegistry();
    std::lock_guard<std::mutex> lock(reg.mu);
    auto& slot = reg.groups[key];
    if (!slot) slot = std::make_shared<Group>(nranks);
    g = slot;
  }
  if (g->nranks != nranks) return ncclInvalidUsage;
  {
    std::unique_lock<std::mutex> lock(g->mu);
    if (++g->joined == nranks) {
      g->cv.notify_all();
    } else if (!g->cv.wait_for(lock, Timeout(), [&] { return g->joined >= nranks; })) {
      last_error = "emulated NCCL: not every rank joined the group";
      return ncclSystemError;
    }
  }
  *comm = new ncclComm{g, rank};
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclInvalidArgument:
      return "invalid argument";
    case ncclInvalidUsage:
      return "invalid usage";
    case ncclSystemError:
      return "unhandled system error";
    default:
      return "emulated NCCL error";
  }
}
const char* ncclGetLastError(ncclComm_t) { return last_error.c_str(); }

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t) {
  return Collective(comm, {Kind::kAllReduce, static_cast<const float*>(send),
                           static_cast<float*>(recv), count, type, op, 0});
}
ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type,
                           int root, ncclComm_t comm, cudaStream_t) {
  return Collective(comm, {Kind::kBroadcast, static_cast<const float*>(send),
                           static_cast<float*>(recv), count, type, ncclSum, root});
}
ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclComm_t comm, cudaStream_t) {
  return Collective(comm, {Kind::kAllGather, static_cast<const float*>(send),
                           static_cast<float*>(recv), count, type, ncclSum, 0});
}
ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t count, ncclDataType_t type,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t) {
  return Collective(comm, {Kind::kReduceScatter, static_cast<const float*>(send),
                           static_cast<float*>(recv), count, type, op, 0});
}

}  // extern "C"
