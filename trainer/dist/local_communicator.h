// LocalCommunicator: the world of one process on host memory. Every collective is the
// identity (a copy where send and receive differ), so single-process training runs the same
// code path as data-parallel training.
#pragma once

#include "trainer/dist/communicator.h"

namespace dyt::dist {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  const char* backend_name() const override { return "local"; }
  bool device_buffers() const override { return false; }

  Status AllReduce(float* buf, size_t n, ReduceOp op) override;
  Status Broadcast(float* buf, size_t n, int root) override;
  Status AllGather(const float* send, float* recv, size_t n_per_rank) override;
  Status ReduceScatter(const float* send, float* recv, size_t n_per_rank, ReduceOp op) override;
  Status Barrier() override { return Status::Ok(); }
};

}  // namespace dyt::dist
