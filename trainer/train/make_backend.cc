#include "trainer/train/make_backend.h"

#include "trainer/train/cpu_backend.h"
#ifdef DYT_WITH_CUDA
#include "trainer/cuda/cuda_backend.h"
#endif

namespace dyt {

StatusOr<std::unique_ptr<TrainBackend>> MakeTrainBackend(const TrainConfig& config,
                                                         dist::Communicator* comm) {
  const TrainSection& tr = config.train;
  if (tr.device == TrainDevice::kCuda) {
#ifdef DYT_WITH_CUDA
    DYT_ASSIGN_OR_RETURN(auto backend, cuda::CudaBackend::Create(config, comm));
    return std::unique_ptr<TrainBackend>(std::move(backend));
#else
    return FailedPrecondition("train.device: cuda, but this dyt-train was built without CUDA");
#endif
  }
  return std::unique_ptr<TrainBackend>(std::make_unique<CpuBackend>(
      config.model, config.optim.adamw, tr.batch_size, tr.seq_len, tr.seed, tr.zero1, comm));
}

}  // namespace dyt
