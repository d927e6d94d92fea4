// NcclCommunicator: the Communicator for GPUs, one rank per GPU, over NCCL.
//
// Buffers are device memory on the device that was current when Create ran. Collectives are
// ENQUEUED on the communicator's stream and return at once; work the caller enqueues on that
// stream afterwards sees the result. Barrier() waits for the stream.
//
// Rendezvous: rank 0 creates the NCCL unique id and publishes its bytes in the KvStore under
// `key`; the other ranks Get it (waiting up to `timeout`). Then every rank joins with
// ncclCommInitRank, which blocks until all `world_size` ranks have joined.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <memory>
#include <string>

#include "trainer/dist/communicator.h"
#include "trainer/dist/kv_store.h"

namespace dyt::dist {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `world_size` ranks. The caller has already selected this rank's device
  // (cudaSetDevice). `stream` may be null (the legacy default stream). The communicator
  // does not own the stream.
  static StatusOr<std::unique_ptr<NcclCommunicator>> Create(KvStore& store, const std::string& key,
                                                            int rank, int world_size,
                                                            cudaStream_t stream,
                                                            std::chrono::milliseconds timeout);
  // The same group, meeting through an existing host communicator (Gloo) instead of a store:
  // rank 0 makes the NCCL id and broadcasts its bytes over `host`. Collective over `host`'s
  // ranks; the NCCL ranks are host's ranks.
  static StatusOr<std::unique_ptr<NcclCommunicator>> CreateOverHost(Communicator& host,
                                                                    cudaStream_t stream);
  // Joins the group of `id` (every rank passes the same id) as `rank` of `world_size`.
  static StatusOr<std::unique_ptr<NcclCommunicator>> CreateFromId(const ncclUniqueId& id, int rank,
                                                                  int world_size,
                                                                  cudaStream_t stream);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  const char* backend_name() const override { return "nccl"; }
  bool device_buffers() const override { return true; }
  void* native_stream() const override { return stream_; }

  cudaStream_t stream() const { return stream_; }
  ncclComm_t comm() const { return comm_; }
  int device() const { return device_; }

  Status AllReduce(float* buf, size_t n, ReduceOp op) override;
  Status Broadcast(float* buf, size_t n, int root) override;
  Status AllGather(const float* send, float* recv, size_t n_per_rank) override;
  Status ReduceScatter(const float* send, float* recv, size_t n_per_rank, ReduceOp op) override;
  Status Barrier() override;

  // Abandons the group (ncclCommAbort): collectives in flight are cancelled instead of waited
  // for, and the communicator is unusable afterwards. For a rank whose collectives went out of
  // step with its peers' (destroying the group normally would wait for them forever).
  void Abort();

 private:
  Status CheckOpen(const char* what) const;  // FAILED_PRECONDITION after Abort
  NcclCommunicator(int rank, int world_size, int device, cudaStream_t stream, ncclComm_t comm,
                   float* barrier_buf)
      : rank_(rank),
        world_size_(world_size),
        device_(device),
        stream_(stream),
        comm_(comm),
        barrier_buf_(barrier_buf) {}

  int rank_;
  int world_size_;
  int device_;
  cudaStream_t stream_;
  ncclComm_t comm_;
  float* barrier_buf_;  // one device float, the payload of Barrier's all-reduce
};

// "<what>: <ncclGetErrorString> (<ncclGetLastError>)" as INTERNAL (UNAVAILABLE for system and
// remote errors); OK for ncclSuccess.
Status NcclStatus(ncclResult_t result, const char* what, ncclComm_t comm = nullptr);

}  // namespace dyt::dist
