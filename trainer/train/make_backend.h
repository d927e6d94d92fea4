// The TrainBackend for a config's train.device: CpuBackend, or CudaBackend when this build
// has CUDA (FAILED_PRECONDITION naming train.device when it does not).
#pragma once

#include <memory>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/train/train_backend.h"
#include "trainer/train/train_config.h"

namespace dyt {

// The backend, its parameters initialised from train.seed (not yet broadcast across ranks).
// `comm` may be null (one process); it must outlive the backend.
StatusOr<std::unique_ptr<TrainBackend>> MakeTrainBackend(const TrainConfig& config,
                                                         dist::Communicator* comm);

}  // namespace dyt
