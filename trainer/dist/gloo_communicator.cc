#include "trainer/dist/gloo_communicator.h"

#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <exception>
#include <map>
#include <utility>

#include "common/signals.h"

namespace dyt::dist {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Floats summed per block in the reduction; the block is read whole before it is written, so
// the output may alias this rank's own input chunk.
constexpr size_t kSumBlock = 1024;

// Thrown by the store adapter through Gloo's rendezvous code and caught in Create, carrying
// the KvStore's Status (DEADLINE_EXCEEDED naming the key, usually). Derives from Gloo's
// IoException because that is what Gloo's callers expect a store to throw.
class StoreError : public gloo::IoException {
 public:
  explicit StoreError(Status status)
      : gloo::IoException(status.ToString()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

bool IsPlainKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// What is left until a deadline in whole milliseconds (the stores' and Gloo's unit), rounded
// up: a wait given this never ends before the deadline (truncating ended them up to 1 ms
// early, and a test that the rendezvous waits its whole timeout caught it).
milliseconds CeilMs(Clock::duration d) { return std::chrono::ceil<milliseconds>(d); }

// gloo::rendezvous::Store on top of our KvStore. Gloo's keys ("rank_0", "rank_1" in this Gloo)
// become "<prefix>.gloo.<key>"; a key with other characters is hex-encoded as
// "<prefix>.gloo.x.<hex>" (plain keys never contain '.', so the two forms cannot collide).
// All waits share one deadline, `timeout` from construction, so a rendezvous with several
// missing peers still fails after `timeout`, not after one timeout per peer.
class KvStoreAdapter final : public gloo::rendezvous::Store {
 public:
  KvStoreAdapter(KvStore& store, std::string prefix, milliseconds timeout)
      : store_(store), prefix_(std::move(prefix)), deadline_(Clock::now() + timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    Status st = store_.Set(KvKey(key), std::string(data.begin(), data.end()));
    if (!st.ok()) throw StoreError(st);
  }

  std::vector<char> get(const std::string& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) {
      Fetch(key, Remaining());
      it = values_.find(key);
    }
    return std::vector<char>(it->second.begin(), it->second.end());
  }

  void wait(const std::vector<std::string>& keys) override { wait(keys, Remaining()); }

  void wait(const std::vector<std::string>& keys, const milliseconds& timeout) override {
    const Clock::time_point deadline = std::min(deadline_, Clock::now() + timeout);
    for (const std::string& key : keys) {
      if (values_.count(key) != 0) continue;
      Fetch(key, std::max(milliseconds(0), CeilMs(deadline - Clock::now())));
    }
  }

 private:
  std::string KvKey(const std::string& key) const {
    const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), IsPlainKeyChar);
    if (plain) return prefix_ + ".gloo." + key;
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : key) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    return prefix_ + ".gloo.x." + hex;
  }

  milliseconds Remaining() const {
    return std::max(milliseconds(0), CeilMs(deadline_ - Clock::now()));
  }

  void Fetch(const std::string& key, milliseconds timeout) {
    StatusOr<std::string> value = store_.Get(KvKey(key), timeout);
    if (!value.ok()) throw StoreError(value.status());
    values_[key] = std::move(value).value();
  }

  KvStore& store_;
  const std::string prefix_;
  const Clock::time_point deadline_;
  std::map<std::string, std::string> values_;
};

milliseconds Remaining(Clock::time_point deadline) {
  // Gloo treats a zero timeout specially in places; a spent deadline still waits 1 ms.
  return std::max(milliseconds(1), CeilMs(deadline - Clock::now()));
}

// The contiguous chunk of each rank in an AllReduce of n floats: sizes differ by at most one,
// the larger ones first.
void SplitChunks(size_t n, int world_size, std::vector<size_t>* offset,
                 std::vector<size_t>* length) {
  const size_t w = static_cast<size_t>(world_size);
  offset->resize(w);
  length->resize(w);
  size_t at = 0;
  for (size_t j = 0; j < w; ++j) {
    (*offset)[j] = at;
    (*length)[j] = n / w + (j < n % w ? 1 : 0);
    at += (*length)[j];
  }
}

}  // namespace

// One point-to-point transfer of a phase: `bytes` at `ptr` to or from `peer`.
struct GlooCommunicator::Transfer {
  int peer;
  void* ptr;
  size_t bytes;
};

StatusOr<std::unique_ptr<GlooCommunicator>> GlooCommunicator::Create(KvStore& store,
                                                                     const std::string& prefix,
                                                                     int rank, int world_size,
                                                                     const GlooOptions& options) {
  if (world_size < 1) {
    return InvalidArgument("gloo: world_size " + std::to_string(world_size) + " must be >= 1");
  }
  if (rank < 0 || rank >= world_size) {
    return InvalidArgument("gloo: rank " + std::to_string(rank) + " is outside [0, " +
                           std::to_string(world_size) + ")");
  }
  if (options.timeout.count() <= 0) {
    return InvalidArgument("gloo: timeout must be positive, got " +
                           std::to_string(options.timeout.count()) + " ms");
  }
  if (options.interface_or_host.empty()) {
    return InvalidArgument("gloo: interface_or_host must name an interface or a host");
  }
  // The longest key this rank's rendezvous writes must be a valid key, which also checks
  // the prefix's characters.
  if (Status st = ValidateKvKey(prefix + ".gloo.rank_" + std::to_string(world_size - 1));
      !st.ok()) {
    return InvalidArgument("gloo: rendezvous prefix '" + prefix +
                           "' is not usable: " + st.message());
  }
  IgnoreSigpipeIfDefault();

  // An existing interface name is bound as an interface, anything else as a host name.
  gloo::transport::tcp::attr attr;
  if (::if_nametoindex(options.interface_or_host.c_str()) != 0) {
    attr.iface = options.interface_or_host;
  } else {
    // Gloo dereferences a failed lookup (SIGSEGV in CreateDeviceAttr): resolve it here first.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(options.interface_or_host.c_str(), nullptr, &hints, &found);
    if (found != nullptr) ::freeaddrinfo(found);
    if (rc != 0 || found == nullptr) {
      return InvalidArgument("DYT_DIST_HOST '" + options.interface_or_host +
                             "': neither a network interface of this machine nor a host name "
                             "that resolves (" +
                             (rc != 0 ? std::string(::gai_strerror(rc)) : "no address") +
                             "); set it (dyt-launch --host, dyt-worker --dist-host) to an "
                             "interface or an address of this machine");
    }
    attr.hostname = options.interface_or_host;
  }
  std::shared_ptr<gloo::transport::Device> device;
  try {
    device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    return Unavailable("gloo: cannot create a TCP device on '" + options.interface_or_host +
                       "': " + e.what());
  }

  // Ranks started for different world sizes would exchange address tables of different sizes
  // (Gloo: "enforce fail ... 136 vs 272"). Rank 0 publishes its world size; the others compare
  // before connecting.
  const std::string world_key = prefix + ".world_size";
  if (rank == 0) {
    DYT_RETURN_IF_ERROR(
        store.Set(world_key, std::to_string(world_size)).WithContext("gloo: rendezvous of rank 0"));
  } else {
    StatusOr<std::string> theirs = store.Get(world_key, options.timeout);
    if (!theirs.ok()) {
      return theirs.status().WithContext("gloo: rendezvous of rank " + std::to_string(rank) +
                                         " of " + std::to_string(world_size) +
                                         " waiting for rank 0");
    }
    if (*theirs != std::to_string(world_size)) {
      return InvalidArgument("DYT_WORLD_SIZE: this rank (" + std::to_string(rank) +
                             ") was started for " + std::to_string(world_size) +
                             " ranks, rank 0 for " + *theirs + " (rendezvous prefix '" + prefix +
                             "'); every rank of a run needs the same world size");
    }
  }
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, world_size);
  context->setTimeout(options.timeout);
  KvStoreAdapter adapter(store, prefix, options.timeout);
  try {
    context->connectFullMesh(adapter, device);
  } catch (const StoreError& e) {
    return e.status().WithContext("gloo: rendezvous of rank " + std::to_string(rank) + " of " +
                                  std::to_string(world_size));
  } catch (const std::exception& e) {
    // A refused connection to an address read from the store is usually another run's: a
    // reused rendezvous id (or a rendezvous directory left from an earlier run).
    return Unavailable("gloo: rank " + std::to_string(rank) + " of " + std::to_string(world_size) +
                       " could not connect to its peers (prefix '" + prefix + "'): " + e.what() +
                       " (is another run, or an earlier one, using this rendezvous id? each run "
                       "needs its own: dyt-launch --rdzv-id, or a fresh --rdzv directory)");
  }
  return std::unique_ptr<GlooCommunicator>(new GlooCommunicator(
      rank, world_size, options.timeout, std::move(device), std::move(context)));
}

GlooCommunicator::GlooCommunicator(int rank, int world_size, milliseconds timeout,
                                   std::shared_ptr<gloo::transport::Device> device,
                                   std::shared_ptr<gloo::Context> context)
    : rank_(rank),
      world_size_(world_size),
      timeout_(timeout),
      device_(std::move(device)),
      context_(std::move(context)) {}

GlooCommunicator::~GlooCommunicator() {
  // The context (its pairs) goes before the device that runs their event loop.
  context_.reset();
  device_.reset();
}

Clock::time_point GlooCommunicator::Deadline() const { return Clock::now() + timeout_; }

Status GlooCommunicator::Begin(const char* op) {
  if (!broken_.ok()) {
    return FailedPrecondition(
        std::string("gloo ") + op +
        ": the communicator is broken by an earlier error: " + broken_.ToString());
  }
  ++seq_;
  return Status::Ok();
}

Status GlooCommunicator::Exchange(const char* op, int phase, const std::vector<Transfer>& sends,
                                  const std::vector<Transfer>& recvs, Clock::time_point deadline) {
  // Slots tell apart the messages of successive collectives and phases on a pair.
  const uint64_t slot = seq_ * 4 + static_cast<uint64_t>(phase);
  std::vector<std::pair<int, std::unique_ptr<gloo::transport::UnboundBuffer>>> recv_bufs;
  std::vector<std::pair<int, std::unique_ptr<gloo::transport::UnboundBuffer>>> send_bufs;
  int peer = -1;
  const char* doing = "";
  try {
    // One buffer per peer, so that a failure surfaces on the wait for that peer.
    for (const Transfer& t : recvs) {
      if (t.bytes == 0) continue;
      peer = t.peer;
      doing = "posting a receive from";
      auto buf = context_->createUnboundBuffer(t.ptr, t.bytes);
      buf->recv(t.peer, slot);
      recv_bufs.emplace_back(t.peer, std::move(buf));
    }
    for (const Transfer& t : sends) {
      if (t.bytes == 0) continue;
      peer = t.peer;
      doing = "sending to";
      auto buf = context_->createUnboundBuffer(t.ptr, t.bytes);
      buf->send(t.peer, slot);
      send_bufs.emplace_back(t.peer, std::move(buf));
    }
    for (auto& [from, buf] : recv_bufs) {
      peer = from;
      doing = "waiting for data from";
      if (!buf->waitRecv(Remaining(deadline))) throw gloo::IoException("receive aborted");
    }
    for (auto& [to, buf] : send_bufs) {
      peer = to;
      doing = "waiting for a send to complete to";
      if (!buf->waitSend(Remaining(deadline))) throw gloo::IoException("send aborted");
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    const bool late = Clock::now() >= deadline;
    std::string msg = std::string("gloo ") + op + " (collective #" + std::to_string(seq_) +
                      ", rank " + std::to_string(rank_) + " of " + std::to_string(world_size_) +
                      "): " + doing + " rank " + std::to_string(peer);
    msg += late ? ": no answer within the " + std::to_string(timeout_.count()) + " ms timeout"
                : ": the connection failed (peer gone?)";
    msg += std::string(" [") + e.what() + "]";
    broken_ = Status(late ? StatusCode::kDeadlineExceeded : StatusCode::kUnavailable, msg);
  }
  // Close every connection: the other ranks then fail at once instead of waiting out their
  // own timeouts, and no late message can land in a buffer the caller gets back.
  try {
    context_->closeConnections();
  } catch (const std::exception&) {
    // Already failing; the broken_ status says why.
  }
  return broken_;
}

Status GlooCommunicator::ReduceScatterPhase(const char* op, const float* send,
                                            const std::vector<size_t>& offset,
                                            const std::vector<size_t>& length, float* out,
                                            ReduceOp reduce, Clock::time_point deadline) {
  const size_t mine = length[rank_];
  scratch_.resize(static_cast<size_t>(world_size_) * mine);
  std::vector<Transfer> sends, recvs;
  std::vector<const float*> part(world_size_);  // part[r] = rank r's copy of this rank's chunk
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) {
      part[r] = send + offset[rank_];
      continue;
    }
    float* slot = scratch_.data() + static_cast<size_t>(r) * mine;
    part[r] = slot;
    recvs.push_back({r, slot, mine * sizeof(float)});
    sends.push_back({r, const_cast<float*>(send + offset[r]), length[r] * sizeof(float)});
  }
  DYT_RETURN_IF_ERROR(Exchange(op, 0, sends, recvs, deadline));

  // The sum in rank order, block by block: ((x_0 + x_1) + x_2) + ...
  const float w = static_cast<float>(world_size_);
  float acc[kSumBlock];
  for (size_t begin = 0; begin < mine; begin += kSumBlock) {
    const size_t len = std::min(kSumBlock, mine - begin);
    std::memcpy(acc, part[0] + begin, len * sizeof(float));
    for (int r = 1; r < world_size_; ++r) {
      const float* src = part[r] + begin;
      for (size_t i = 0; i < len; ++i) acc[i] += src[i];
    }
    if (reduce == ReduceOp::kAvg) {
      for (size_t i = 0; i < len; ++i) acc[i] /= w;
    }
    std::memcpy(out + begin, acc, len * sizeof(float));
  }
  return Status::Ok();
}

Status GlooCommunicator::AllGatherPhase(const char* op, const float* mine, float* recv,
                                        const std::vector<size_t>& offset,
                                        const std::vector<size_t>& length,
                                        Clock::time_point deadline) {
  float* own = recv + offset[rank_];
  if (mine != own && length[rank_] > 0) std::memcpy(own, mine, length[rank_] * sizeof(float));
  std::vector<Transfer> sends, recvs;
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    recvs.push_back({r, recv + offset[r], length[r] * sizeof(float)});
    sends.push_back({r, own, length[rank_] * sizeof(float)});
  }
  return Exchange(op, 1, sends, recvs, deadline);
}

Status GlooCommunicator::AllReduce(float* buf, size_t n, ReduceOp op) {
  DYT_RETURN_IF_ERROR(CheckBuffer("gloo AllReduce", "buf", buf, n));
  DYT_RETURN_IF_ERROR(Begin("AllReduce"));
  if (n == 0 || world_size_ == 1) return Status::Ok();  // sum and average of one are identity
  const Clock::time_point deadline = Deadline();
  std::vector<size_t> offset, length;
  SplitChunks(n, world_size_, &offset, &length);
  float* own = buf + offset[rank_];
  DYT_RETURN_IF_ERROR(ReduceScatterPhase("AllReduce", buf, offset, length, own, op, deadline));
  return AllGatherPhase("AllReduce", own, buf, offset, length, deadline);
}

Status GlooCommunicator::ReduceScatter(const float* send, float* recv, size_t n_per_rank,
                                       ReduceOp op) {
  DYT_RETURN_IF_ERROR(CheckBuffer("gloo ReduceScatter", "send", send, n_per_rank));
  DYT_RETURN_IF_ERROR(CheckBuffer("gloo ReduceScatter", "recv", recv, n_per_rank));
  DYT_RETURN_IF_ERROR(Begin("ReduceScatter"));
  if (n_per_rank == 0) return Status::Ok();
  if (world_size_ == 1) {
    if (send != recv) std::memmove(recv, send, n_per_rank * sizeof(float));
    return Status::Ok();
  }
  std::vector<size_t> offset(world_size_), length(world_size_, n_per_rank);
  for (int r = 0; r < world_size_; ++r) offset[r] = static_cast<size_t>(r) * n_per_rank;
  return ReduceScatterPhase("ReduceScatter", send, offset, length, recv, op, Deadline());
}

Status GlooCommunicator::AllGather(const float* send, float* recv, size_t n_per_rank) {
  DYT_RETURN_IF_ERROR(CheckBuffer("gloo AllGather", "send", send, n_per_rank));
  DYT_RETURN_IF_ERROR(CheckBuffer("gloo AllGather", "recv", recv, n_per_rank));
  DYT_RETURN_IF_ERROR(Begin("AllGather"));
  if (n_per_rank == 0) return Status::Ok();
  std::vector<size_t> offset(world_size_), length(world_size_, n_per_rank);
  for (int r = 0; r < world_size_; ++r) offset[r] = static_cast<size_t>(r) * n_per_rank;
  return AllGatherPhase("AllGather", send, recv, offset, length, Deadline());
}

Status GlooCommunicator::Broadcast(float* buf, size_t n, int root) {
  DYT_RETURN_IF_ERROR(CheckRoot("gloo Broadcast", root, world_size_));
  DYT_RETURN_IF_ERROR(CheckBuffer("gloo Broadcast", "buf", buf, n));
  DYT_RETURN_IF_ERROR(Begin("Broadcast"));
  if (n == 0 || world_size_ == 1) return Status::Ok();
  std::vector<Transfer> sends, recvs;
  if (rank_ == root) {
    for (int r = 0; r < world_size_; ++r) {
      if (r != root) sends.push_back({r, buf, n * sizeof(float)});
    }
  } else {
    recvs.push_back({root, buf, n * sizeof(float)});
  }
  return Exchange("Broadcast", 2, sends, recvs, Deadline());
}

Status GlooCommunicator::Barrier() {
  DYT_RETURN_IF_ERROR(Begin("Barrier"));
  if (world_size_ == 1) return Status::Ok();
  // Every rank tells every other that it has arrived and waits to hear the same from all.
  char token = 1;
  std::vector<char> arrived(world_size_, 0);
  std::vector<Transfer> sends, recvs;
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    sends.push_back({r, &token, 1});
    recvs.push_back({r, &arrived[r], 1});
  }
  return Exchange("Barrier", 3, sends, recvs, Deadline());
}

}  // namespace dyt::dist
