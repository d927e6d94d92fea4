// CpuBackend: the fp32 CPU training backend — LlamaCpu's forward/backward, AdamW on the host,
// gradients averaged over a host Communicator (Gloo, or none for one process) in 16 MB buckets,
// and optionally ZeRO-1 (AdamW moments sharded across ranks: reduce-scatter the gradients,
// update this rank's shard, all-gather the parameters).
//
// Ranks stay bit-identical: the all-reduce gives every rank the same bits and the update is
// deterministic for a fixed thread count.
#pragma once

#include <memory>
#include <vector>

#include "trainer/cpu/llama_cpu.h"
#include "trainer/dist/communicator.h"
#include "trainer/optim/adamw.h"
#include "trainer/train/train_backend.h"

namespace dyt {

class CpuBackend final : public TrainBackend {
 public:
  // Builds the model for micro-batches of `batch` x `seq_len` tokens and initialises it from
  // `seed` (not yet broadcast: call BroadcastParams). `comm` may be null (one process) and
  // must outlive the backend.
  CpuBackend(const ModelConfig& model, const AdamWConfig& adamw, int batch, int seq_len,
             uint64_t seed, bool zero1, dist::Communicator* comm);

  const char* name() const override { return "cpu"; }
  std::string DeviceSummary() const override;
  const ParamLayout& layout() const override { return model_.layout(); }
  int64_t step() const override { return optim_->step(); }
  Status ZeroGrads() override;
  StatusOr<double> ForwardBackward(const int32_t* inputs, const int32_t* targets, int batch,
                                   float grad_scale) override;
  StatusOr<double> Loss(const int32_t* inputs, const int32_t* targets, int batch) override;
  StatusOr<double> ReduceAndUpdate(float lr, float clip) override;
  StatusOr<std::vector<float>> Alphas() override { return model_.Alphas(); }
  StatusOr<HostTrainState> ExportState() override;
  Status ImportState(const HostTrainState& state) override;
  Status BroadcastParams() override;

  LlamaCpu& model() { return model_; }

 private:
  int world_size() const { return comm_ ? comm_->world_size() : 1; }

  LlamaCpu model_;
  dist::Communicator* comm_;
  std::unique_ptr<AdamW> optim_;
  std::vector<float> shard_;  // ZeRO-1 scratch: one rank's shard (empty without ZeRO-1)
};

}  // namespace dyt
