// CudaBackend: the GPU training backend (train.device: cuda) — LlamaCuda's bf16 mixed-precision
// forward/backward, AdamW on the GPU over fp32 master weights and fp32 moments (the bf16 copy
// written in the same pass), the global gradient norm and clipping on the GPU, and with more
// than one rank an NCCL all-reduce of the gradients that overlaps the backward pass: on the
// last micro-batch of a step, each block's gradient range is all-reduced on a second stream as
// soon as the backward pass has finished it. With train.zero1 (ZeRO stage 1) the AdamW moments
// are sharded instead, as on the CPU backend: the gradients are reduce-scattered (in place),
// the norm summed from the shards, AdamW updates this rank's shard and the parameters are
// all-gathered; exported states gather the full moments, so checkpoints are the same either way.
//
// Device: the GPU of index local_rank % (visible GPUs) — under dyt-worker each rank sees one
// GPU (CUDA_VISIBLE_DEVICES), under dyt-launch on a multi-GPU machine rank r takes GPU r.
// The NCCL group meets through the host communicator (NcclCommunicator::CreateOverHost); the
// trainer's scalar votes stay on the host communicator. With more than one rank, a call that
// fails once the step's all-reduces may have begun leaves this rank's collectives out of step
// with its peers': every later call then returns FAILED_PRECONDITION (end the job and resume
// from a checkpoint).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/train/train_backend.h"
#include "trainer/train/train_config.h"

namespace dyt::cuda {

class PhaseProfiler;

class CudaBackend final : public TrainBackend {
 public:
  // Picks the GPU, builds the model (initialised from train.seed, like the CPU backend) and
  // the optimizer state, and with more than one rank the NCCL group (collective over `comm`).
  // `comm` may be null (one process) and must outlive the backend.
  static StatusOr<std::unique_ptr<CudaBackend>> Create(const TrainConfig& config,
                                                       dist::Communicator* comm);
  ~CudaBackend() override;

  const char* name() const override { return "cuda"; }
  std::string DeviceSummary() const override;
  const ParamLayout& layout() const override;
  int64_t step() const override;
  Status ZeroGrads() override;
  StatusOr<double> ForwardBackward(const int32_t* inputs, const int32_t* targets, int batch,
                                   float grad_scale) override;
  StatusOr<double> Loss(const int32_t* inputs, const int32_t* targets, int batch) override;
  StatusOr<double> ReduceAndUpdate(float lr, float clip) override;
  StatusOr<std::vector<float>> Alphas() override;
  StatusOr<HostTrainState> ExportState() override;
  Status ImportState(const HostTrainState& state) override;
  Status BroadcastParams() override;

  // Benchmarks: marks the phases of every call on the compute stream into `profiler` (the
  // model's, see LlamaCuda::SetProfiler, and zero_grads, allreduce.wait, grad_norm, host.wait,
  // adamw); null (the default) stops. Flush with stream().
  void SetProfiler(PhaseProfiler* profiler);
  cudaStream_t stream() const;

  // Device memory of the model and optimizer state (parameters, bf16 copy, gradients, moments,
  // activations and kernel scratch); cuBLASLt's workspace and NCCL's buffers are not counted.
  int64_t device_bytes() const;

 private:
  struct Impl;
  explicit CudaBackend(std::unique_ptr<Impl> impl);
  // The bodies of the calls above; the public ones add the failure bookkeeping.
  StatusOr<double> ReduceAndUpdateOnce(float lr, float clip);
  StatusOr<HostTrainState> ExportStateOnce();
  Status ImportStateOnce(const HostTrainState& state);
  Status BroadcastParamsOnce();
  std::unique_ptr<Impl> impl_;
};

}  // namespace dyt::cuda
