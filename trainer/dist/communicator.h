// Communicator: the collectives data-parallel training needs, behind one interface so the
// trainer does not care whether NCCL (GPUs) or a host backend (Gloo, or LocalCommunicator for
// a single process) moves the bytes.
//
// Contract shared by every backend:
//   * Every rank of the group calls the same collectives in the same order with the same sizes
//     (as with MPI/NCCL); a mismatch is a programming error and may hang.
//   * Buffers are host memory for host backends and device memory (on the communicator's
//     device) for NCCL. Sizes count floats, not bytes.
//   * Host backends complete the collective before returning. Device backends ENQUEUE it on
//     their stream (see stream()) and return; the result is ready when the stream reaches it.
//     Barrier() on a device backend also waits for the stream.
//   * In-place AllReduce / Broadcast is the normal case; AllGather and ReduceScatter take
//     separate send and receive buffers that must not overlap.
//   * kAvg divides the sum by world_size().
//   * Errors come back as Status (INVALID_ARGUMENT for bad arguments, INTERNAL or UNAVAILABLE
//     for backend failures, naming the backend call).
#pragma once

#include <cstddef>

#include "common/status.h"

namespace dyt::dist {

enum class ReduceOp { kSum, kAvg };

const char* ReduceOpName(ReduceOp op);

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // "nccl", "gloo", "local": for logs.
  virtual const char* backend_name() const = 0;

  // buf[i] = op over ranks of buf[i], on every rank. n floats.
  virtual Status AllReduce(float* buf, size_t n, ReduceOp op) = 0;
  // buf on every rank = buf on `root`.
  virtual Status Broadcast(float* buf, size_t n, int root) = 0;
  // recv[r * n_per_rank + i] = send_r[i]; recv holds world_size() * n_per_rank floats.
  virtual Status AllGather(const float* send, float* recv, size_t n_per_rank) = 0;
  // recv[i] = op over ranks r of send_r[rank() * n_per_rank + i]; send holds
  // world_size() * n_per_rank floats, recv n_per_rank.
  virtual Status ReduceScatter(const float* send, float* recv, size_t n_per_rank, ReduceOp op) = 0;
  // Returns once every rank has entered the barrier (and, on device backends, once all work
  // enqueued on the stream before it has finished).
  virtual Status Barrier() = 0;

  // True when buffers are device memory (NCCL), false for host memory.
  virtual bool device_buffers() const = 0;
  // The CUDA stream (a cudaStream_t) collectives are enqueued on, for device backends; null for
  // host backends. Typed void* so this header stays free of CUDA; NcclCommunicator::stream()
  // is the typed accessor.
  virtual void* native_stream() const { return nullptr; }
};

// Argument checks shared by the backends; `backend` names the caller in messages.
Status CheckRoot(const char* backend, int root, int world_size);
Status CheckBuffer(const char* backend, const char* what, const void* buf, size_t n);

}  // namespace dyt::dist
