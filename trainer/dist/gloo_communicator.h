// GlooCommunicator: the Communicator for CPU ranks, on host memory, over Gloo's TCP transport.
//
// Rendezvous goes through OUR KvStore (a FileKvStore run by hand, the scheduler's key-value
// under a worker): Gloo's rendezvous publishes, for each rank r, its host name and the
// addresses of its TCP endpoints under "<prefix>.gloo.rank_<r>" and "<prefix>.gloo.<r>", and
// reads every peer's; then every pair of ranks connects directly. A peer that never publishes
// makes Create fail with DEADLINE_EXCEEDED naming its key, `timeout` after Create began.
//
// Algorithms. Gloo supplies the connections and point-to-point transfers; the collectives are
// ours, all "direct" (every rank talks to every other rank at once), so that results are
// deterministic and identical on every rank:
//   * AllReduce: the buffer is cut into world_size contiguous chunks (sizes differ by at most
//     one float); rank j receives chunk j from every rank, sums it, and sends the sum back to
//     every rank (a reduce-scatter then an all-gather). Each chunk is summed by exactly one
//     rank, so every rank ends with the same bits.
//   * ReduceScatter: the first half of AllReduce; AllGather: the second half; Broadcast: the
//     root sends to every rank; Barrier: every rank sends a token to, and waits for one from,
//     every other rank.
// Reduction order: element i of a sum is always ((x_0[i] + x_1[i]) + x_2[i]) + ... in rank
// order, whatever the world size, buffer size or chunking, i.e. exactly what a loop over
// ranks computes in one process. kAvg is that sum divided by world_size (one correctly
// rounded division, so e.g. for two ranks it is exactly (a + b) * 0.5).
// Per rank and collective, bytes sent and received are those of a ring algorithm
// ((world_size - 1) / world_size of the buffer in each direction for AllReduce's halves), in
// world_size - 1 concurrent transfers instead of world_size - 1 steps, which suits the small
// CPU worlds this backend is for. Extra memory: AllReduce and ReduceScatter receive the other
// ranks' copies of this rank's chunk into a scratch buffer ((world_size - 1) * chunk floats,
// kept between calls) before summing; nothing else is copied except a rank's own part of
// AllGather / ReduceScatter (one memcpy).
//
// Failures. Every collective has a deadline of `timeout` from its start. A peer that dies
// (its sockets close) fails the survivors' current or next collective at once with
// UNAVAILABLE; a peer that stops answering (hung, stopped, network gone) fails it after
// `timeout` with DEADLINE_EXCEEDED. Messages name the collective, its sequence number and the
// peer rank being waited for. After any failure the communicator is broken: it closes every
// connection (so the other ranks fail fast too instead of waiting for their own timeouts) and
// every later call returns FAILED_PRECONDITION with the original error. Recovery is to exit
// and restart the job from a checkpoint, as with NCCL.
//
// Process-wide effect: Create sets SIGPIPE to SIG_IGN when it is at its default (termination),
// because Gloo writes to sockets with writev and a write to a dead peer would otherwise kill
// this rank instead of returning an error.
//
// Not thread-safe: one thread issues the collectives (as the Communicator contract says).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/dist/kv_store.h"

namespace gloo {
class Context;
namespace transport {
class Device;
}  // namespace transport
}  // namespace gloo

namespace dyt::dist {

struct GlooOptions {
  // Where this rank listens: a network interface name (e.g. "eth0") or a host name / IP
  // address that the other ranks can reach. 127.0.0.1 is right for one machine only.
  std::string interface_or_host = "127.0.0.1";
  // Rendezvous wait for each peer's key, and the deadline of every collective.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

class GlooCommunicator final : public Communicator {
 public:
  // Joins the group of `world_size` ranks as `rank`. `prefix` names the job attempt (a valid
  // KvStore key, e.g. "job42.attempt3"); every rank of the attempt passes the same one and no
  // other attempt may reuse it. Returns once connections to all peers are up.
  // INVALID_ARGUMENT for bad arguments, DEADLINE_EXCEEDED naming the key of a peer that did
  // not publish in time, UNAVAILABLE when connecting to a peer fails.
  static StatusOr<std::unique_ptr<GlooCommunicator>> Create(KvStore& store,
                                                            const std::string& prefix, int rank,
                                                            int world_size,
                                                            const GlooOptions& options);
  ~GlooCommunicator() override;
  GlooCommunicator(const GlooCommunicator&) = delete;
  GlooCommunicator& operator=(const GlooCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  const char* backend_name() const override { return "gloo"; }
  bool device_buffers() const override { return false; }

  Status AllReduce(float* buf, size_t n, ReduceOp op) override;
  Status Broadcast(float* buf, size_t n, int root) override;
  Status AllGather(const float* send, float* recv, size_t n_per_rank) override;
  Status ReduceScatter(const float* send, float* recv, size_t n_per_rank, ReduceOp op) override;
  Status Barrier() override;

  std::chrono::milliseconds timeout() const { return timeout_; }
  // The error that broke the communicator; OK while it works.
  const Status& broken() const { return broken_; }

 private:
  struct Transfer;

  GlooCommunicator(int rank, int world_size, std::chrono::milliseconds timeout,
                   std::shared_ptr<gloo::transport::Device> device,
                   std::shared_ptr<gloo::Context> context);

  // Starts a collective: FAILED_PRECONDITION when broken, else numbers it.
  Status Begin(const char* op);
  // Posts every send and receive of one phase, then waits for all of them by the deadline.
  // On failure, breaks the communicator and returns the Status naming `op` and the peer.
  Status Exchange(const char* op, int phase, const std::vector<Transfer>& sends,
                  const std::vector<Transfer>& recvs,
                  std::chrono::steady_clock::time_point deadline);
  // The reduce-scatter half: send chunk j of `send` (offsets/lengths in floats) to rank j,
  // sum this rank's chunk over ranks into `out`.
  Status ReduceScatterPhase(const char* op, const float* send, const std::vector<size_t>& offset,
                            const std::vector<size_t>& length, float* out, ReduceOp reduce,
                            std::chrono::steady_clock::time_point deadline);
  // The all-gather half: send `mine` (this rank's chunk) to every rank, receive chunk j of
  // `recv` from rank j. `mine` may alias recv's own chunk.
  Status AllGatherPhase(const char* op, const float* mine, float* recv,
                        const std::vector<size_t>& offset, const std::vector<size_t>& length,
                        std::chrono::steady_clock::time_point deadline);
  std::chrono::steady_clock::time_point Deadline() const;

  const int rank_;
  const int world_size_;
  const std::chrono::milliseconds timeout_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  uint64_t seq_ = 0;            // collectives issued so far (the same count on every rank)
  std::vector<float> scratch_;  // received copies of this rank's chunk, reused between calls
  Status broken_;
};

}  // namespace dyt::dist
