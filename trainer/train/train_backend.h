// TrainBackend: what one optimizer step needs from a device — the model's forward and backward
// passes and the parameter update with gradients averaged across ranks — behind one interface,
// so the Trainer (data, schedule, events, checkpoints) does not care where the math runs.
//
//   cpu   CpuBackend (trainer/train/cpu_backend.h): LlamaCpu + AdamW in fp32, host collectives
//         (Gloo or a single process), optional ZeRO-1.
//   cuda  CudaBackend (trainer/cuda/cuda_backend.h): LlamaCuda, bf16 activations and matrix
//         products with fp32 master weights and fp32 AdamW state on one GPU, NCCL all-reduce
//         overlapped with the backward pass.
//
// A step is: ZeroGrads(); ForwardBackward() once per micro-batch; ReduceAndUpdate(lr).
// Every call is collective across ranks where it says so; errors come back as Status.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/model/param_layout.h"

namespace dyt {

// The full model and optimizer state, host-side, in ParamLayout order (each exactly
// layout.total() floats).
struct HostTrainState {
  std::vector<float> params;
  std::vector<float> adam_m;
  std::vector<float> adam_v;
  int64_t adam_step = 0;
};

class TrainBackend {
 public:
  virtual ~TrainBackend() = default;

  // "cpu" or "cuda", for logs and events.
  virtual const char* name() const = 0;
  // One line describing the device ("12 OpenMP threads", "NVIDIA H200, bf16").
  virtual std::string DeviceSummary() const = 0;
  virtual const ParamLayout& layout() const = 0;
  // Optimizer steps taken (drives AdamW's bias corrections and the LR schedule).
  virtual int64_t step() const = 0;

  virtual Status ZeroGrads() = 0;
  // One micro-batch: inputs and targets are host arrays [batch, seq_len]. Adds the gradient of
  // (mean loss * grad_scale) to the gradient buffer and returns the mean loss.
  virtual StatusOr<double> ForwardBackward(const int32_t* inputs, const int32_t* targets, int batch,
                                           float grad_scale) = 0;
  // Forward only; the mean loss.
  virtual StatusOr<double> Loss(const int32_t* inputs, const int32_t* targets, int batch) = 0;
  // Collective: averages the gradients over ranks, clips them to global norm `clip` (0: no
  // clipping) and applies AdamW at `lr`. Returns the global gradient norm before clipping.
  virtual StatusOr<double> ReduceAndUpdate(float lr, float clip) = 0;

  // DyT alpha of every norm layer (per block attention then FFN, then final); empty for RMSNorm.
  virtual StatusOr<std::vector<float>> Alphas() = 0;

  // Collective (ZeRO-1 gathers the moments): the whole state on the host.
  virtual StatusOr<HostTrainState> ExportState() = 0;
  // Loads a state of the same layout (the optimizer keeps only its own range of the moments),
  // then makes every rank hold rank 0's parameters. Collective.
  virtual Status ImportState(const HostTrainState& state) = 0;
  // Collective: every rank takes rank 0's parameters (after init, so ranks start equal).
  virtual Status BroadcastParams() = 0;
};

}  // namespace dyt
