#include "trainer/dist/nccl_communicator.h"

#include <cstring>
#include <iterator>
#include <string>

namespace dyt::dist {

namespace {

Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  return Internal(std::string(what) + ": " + cudaGetErrorName(err) + " (" +
                  cudaGetErrorString(err) + ")");
}

ncclRedOp_t ToNcclOp(ReduceOp op) { return op == ReduceOp::kAvg ? ncclAvg : ncclSum; }

}  // namespace

Status NcclStatus(ncclResult_t result, const char* what, ncclComm_t comm) {
  if (result == ncclSuccess) return Status::Ok();
  std::string msg = std::string(what) + ": " + ncclGetErrorString(result);
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && last[0] != '\0') msg += std::string(" (") + last + ")";
  const bool remote = result == ncclSystemError || result == ncclRemoteError;
  return Status(remote ? StatusCode::kUnavailable : StatusCode::kInternal, msg);
}

StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    KvStore& store, const std::string& key, int rank, int world_size, cudaStream_t stream,
    std::chrono::milliseconds timeout) {
  if (world_size < 1) {
    return InvalidArgument("nccl: world_size " + std::to_string(world_size) + " must be >= 1");
  }
  if (rank < 0 || rank >= world_size) {
    return InvalidArgument("nccl: rank " + std::to_string(rank) + " is outside [0, " +
                           std::to_string(world_size) + ")");
  }
  DYT_RETURN_IF_ERROR(ValidateKvKey(key));

  // Rendezvous first: a rank whose peers never show up fails here with DEADLINE_EXCEEDED
  // naming the key, before it touches the GPU.
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (rank == 0) {
    DYT_RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
    DYT_RETURN_IF_ERROR(store.Set(key, std::string(id.internal, sizeof(id.internal))));
  } else {
    DYT_ASSIGN_OR_RETURN(std::string bytes, store.Get(key, timeout));
    if (bytes.size() != sizeof(id.internal)) {
      return DataLoss("nccl: rendezvous value under '" + key + "' has " +
                      std::to_string(bytes.size()) + " bytes, expected an ncclUniqueId of " +
                      std::to_string(sizeof(id.internal)));
    }
    std::memcpy(id.internal, bytes.data(), sizeof(id.internal));
  }

  return CreateFromId(id, rank, world_size, stream);
}

StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::CreateOverHost(Communicator& host,
                                                                             cudaStream_t stream) {
  if (host.device_buffers()) {
    return InvalidArgument("nccl: CreateOverHost needs a host communicator, got " +
                           std::string(host.backend_name()));
  }
  // The id's bytes travel as floats: a broadcast copies bits and never does arithmetic.
  static_assert(sizeof(ncclUniqueId::internal) % sizeof(float) == 0);
  // The last word says whether rank 0 has an id: when ncclGetUniqueId fails there, the others
  // learn it now instead of waiting out the host communicator's timeout.
  constexpr size_t kIdWords = sizeof(ncclUniqueId::internal) / sizeof(float);
  float words[kIdWords + 1] = {};
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  Status made = Status::Ok();
  if (host.rank() == 0) {
    made = NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId");
    std::memcpy(words, id.internal, sizeof(id.internal));
    words[kIdWords] = made.ok() ? 1.f : 0.f;
  }
  DYT_RETURN_IF_ERROR(
      host.Broadcast(words, std::size(words), 0).WithContext("nccl: sharing the id"));
  if (!made.ok()) return made;
  if (words[kIdWords] != 1.f) {
    return Unavailable(
        "nccl: rank 0 could not make the group's id (ncclGetUniqueId failed; its "
        "log says why)");
  }
  std::memcpy(id.internal, words, sizeof(id.internal));
  return CreateFromId(id, host.rank(), host.world_size(), stream);
}

StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::CreateFromId(const ncclUniqueId& id,
                                                                           int rank, int world_size,
                                                                           cudaStream_t stream) {
  int device = -1;
  DYT_RETURN_IF_ERROR(CudaStatus(cudaGetDevice(&device), "nccl: cudaGetDevice"));
  float* barrier_buf = nullptr;
  DYT_RETURN_IF_ERROR(
      CudaStatus(cudaMalloc(&barrier_buf, sizeof(float)), "nccl: cudaMalloc(barrier)"));
  // On the communicator's stream (a non-blocking stream is not ordered after the legacy one),
  // and finished before any collective can read it.
  Status st = CudaStatus(cudaMemsetAsync(barrier_buf, 0, sizeof(float), stream),
                         "nccl: cudaMemsetAsync(barrier)");
  if (st.ok()) st = CudaStatus(cudaStreamSynchronize(stream), "nccl: cudaStreamSynchronize");
  ncclComm_t comm = nullptr;
  if (st.ok()) st = NcclStatus(ncclCommInitRank(&comm, world_size, id, rank), "ncclCommInitRank");
  if (!st.ok()) {
    cudaFree(barrier_buf);
    return st;
  }
  return std::unique_ptr<NcclCommunicator>(
      new NcclCommunicator(rank, world_size, device, stream, comm, barrier_buf));
}

NcclCommunicator::~NcclCommunicator() {
  // Errors here have no one to report to; the process is usually shutting down.
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  if (barrier_buf_ != nullptr) cudaFree(barrier_buf_);
}

Status NcclCommunicator::AllReduce(float* buf, size_t n, ReduceOp op) {
  DYT_RETURN_IF_ERROR(CheckOpen("nccl AllReduce"));
  DYT_RETURN_IF_ERROR(CheckBuffer("nccl AllReduce", "buf", buf, n));
  if (n == 0) return Status::Ok();
  return NcclStatus(ncclAllReduce(buf, buf, n, ncclFloat32, ToNcclOp(op), comm_, stream_),
                    "ncclAllReduce", comm_);
}

Status NcclCommunicator::Broadcast(float* buf, size_t n, int root) {
  DYT_RETURN_IF_ERROR(CheckOpen("nccl Broadcast"));
  DYT_RETURN_IF_ERROR(CheckRoot("nccl Broadcast", root, world_size_));
  DYT_RETURN_IF_ERROR(CheckBuffer("nccl Broadcast", "buf", buf, n));
  if (n == 0) return Status::Ok();
  return NcclStatus(ncclBroadcast(buf, buf, n, ncclFloat32, root, comm_, stream_), "ncclBroadcast",
                    comm_);
}

Status NcclCommunicator::AllGather(const float* send, float* recv, size_t n_per_rank) {
  DYT_RETURN_IF_ERROR(CheckOpen("nccl AllGather"));
  DYT_RETURN_IF_ERROR(CheckBuffer("nccl AllGather", "send", send, n_per_rank));
  DYT_RETURN_IF_ERROR(CheckBuffer("nccl AllGather", "recv", recv, n_per_rank));
  if (n_per_rank == 0) return Status::Ok();
  return NcclStatus(ncclAllGather(send, recv, n_per_rank, ncclFloat32, comm_, stream_),
                    "ncclAllGather", comm_);
}

Status NcclCommunicator::ReduceScatter(const float* send, float* recv, size_t n_per_rank,
                                       ReduceOp op) {
  DYT_RETURN_IF_ERROR(CheckOpen("nccl ReduceScatter"));
  DYT_RETURN_IF_ERROR(CheckBuffer("nccl ReduceScatter", "send", send, n_per_rank));
  DYT_RETURN_IF_ERROR(CheckBuffer("nccl ReduceScatter", "recv", recv, n_per_rank));
  if (n_per_rank == 0) return Status::Ok();
  return NcclStatus(
      ncclReduceScatter(send, recv, n_per_rank, ncclFloat32, ToNcclOp(op), comm_, stream_),
      "ncclReduceScatter", comm_);
}

Status NcclCommunicator::CheckOpen(const char* what) const {
  if (comm_ != nullptr) return Status::Ok();
  return FailedPrecondition(std::string(what) + ": the group was aborted");
}

void NcclCommunicator::Abort() {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
}

Status NcclCommunicator::Barrier() {
  DYT_RETURN_IF_ERROR(CheckOpen("nccl Barrier"));
  // NCCL has no barrier: a one-float all-reduce (max of zeros, so the value never grows)
  // completes only when every rank has issued it, and synchronizing the stream waits for it
  // (and for everything enqueued before it).
  DYT_RETURN_IF_ERROR(
      NcclStatus(ncclAllReduce(barrier_buf_, barrier_buf_, 1, ncclFloat32, ncclMax, comm_, stream_),
                 "ncclAllReduce(barrier)", comm_));
  return CudaStatus(cudaStreamSynchronize(stream_), "nccl Barrier: cudaStreamSynchronize");
}

}  // namespace dyt::dist
