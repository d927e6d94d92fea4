#include "trainer/dist/communicator.h"

#include <string>

namespace dyt::dist {

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
  }
  return "unknown";
}

Status CheckRoot(const char* backend, int root, int world_size) {
  if (root < 0 || root >= world_size) {
    return InvalidArgument(std::string(backend) + ": root " + std::to_string(root) +
                           " is outside [0, " + std::to_string(world_size) + ")");
  }
  return Status::Ok();
}

Status CheckBuffer(const char* backend, const char* what, const void* buf, size_t n) {
  if (n > 0 && buf == nullptr) {
    return InvalidArgument(std::string(backend) + ": " + what + " is null with " +
                           std::to_string(n) + " elements");
  }
  return Status::Ok();
}

}  // namespace dyt::dist
