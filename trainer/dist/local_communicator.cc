#include "trainer/dist/local_communicator.h"

#include <cstring>

namespace dyt::dist {

Status LocalCommunicator::AllReduce(float* buf, size_t n, ReduceOp /*op*/) {
  // Sum and average over one rank are both the identity.
  return CheckBuffer("local AllReduce", "buf", buf, n);
}

Status LocalCommunicator::Broadcast(float* buf, size_t n, int root) {
  DYT_RETURN_IF_ERROR(CheckRoot("local Broadcast", root, 1));
  return CheckBuffer("local Broadcast", "buf", buf, n);
}

Status LocalCommunicator::AllGather(const float* send, float* recv, size_t n_per_rank) {
  DYT_RETURN_IF_ERROR(CheckBuffer("local AllGather", "send", send, n_per_rank));
  DYT_RETURN_IF_ERROR(CheckBuffer("local AllGather", "recv", recv, n_per_rank));
  if (n_per_rank > 0 && send != recv) std::memmove(recv, send, n_per_rank * sizeof(float));
  return Status::Ok();
}

Status LocalCommunicator::ReduceScatter(const float* send, float* recv, size_t n_per_rank,
                                        ReduceOp /*op*/) {
  DYT_RETURN_IF_ERROR(CheckBuffer("local ReduceScatter", "send", send, n_per_rank));
  DYT_RETURN_IF_ERROR(CheckBuffer("local ReduceScatter", "recv", recv, n_per_rank));
  if (n_per_rank > 0 && send != recv) std::memmove(recv, send, n_per_rank * sizeof(float));
  return Status::Ok();
}

}  // namespace dyt::dist
