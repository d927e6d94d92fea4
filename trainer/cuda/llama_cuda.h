// The LLaMA-DyT model on one GPU: bf16 activations and matrix products (cuBLASLt, fp32
// accumulate), fp32 master parameters and fp32 gradients, our own kernels for everything else.
// The GPU twin of LlamaCpu (trainer/cpu/llama_cpu.h): same ParamLayout, same math, same
// initialisation, so a run on either backend starts from identical parameters and their loss
// curves can be compared step by step (tests/cuda/llama_cuda_test.cc, bench/gpu/run.sh).
//
// Precision. Parameters live twice: the fp32 master buffer (optimizer, checkpoints, the norm
// parameters and the embedding gather read it) and a bf16 copy the matrix products read
// (refreshed by the optimizer in the same pass that updates the master; RefreshBf16 after any
// other change). The residual stream is fp32; every other activation is bf16; losses, the norms'
// reductions and all parameter gradients are fp32.
//
// Fusions. The residual add is fused with the next norm (ResidualDytForward: one pass writes
// the new residual and the norm's output); q, k and v come from ONE product with the adjacent
// wq|wk|wv rows; the backward of each norm adds the residual gradient in the same pass; the
// cross-entropy writes dlogits over the logits; the SwiGLU backward works in place.
//
// Memory. Everything is allocated by Create: parameters, gradients, the bf16 copy and the
// activations of a micro-batch of up to max_batch x seq_len tokens. With `recompute`, only
// each block's input (the fp32 residual stream) is kept per layer; the backward pass re-runs a
// block's forward into one shared set of buffers just before its backward.
//
// Streams. Everything runs on the stream given to Create. ForwardBackward and Loss wait for
// their loss (one small copy to the host) before returning. Gradient buckets: when a
// GradReadyFn is passed, it is called (on the host, while the GPU still works) each time the
// gradients of a contiguous parameter range are final for this micro-batch, in the order the
// backward pass finishes them, with the range [begin, end) in floats; the caller may record an
// event on stream() and start an all-reduce of that range on another stream.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "trainer/cuda/attention_kernels.h"
#include "trainer/model/config.h"
#include "trainer/model/param_layout.h"

namespace dyt::cuda {

using GradReadyFn = std::function<Status(int64_t begin, int64_t end)>;
class PhaseProfiler;

// How ForwardBackward writes the gradient buffer.
//   kAccumulate  adds this micro-batch's gradient to what grads() holds.
//   kOverwrite   replaces it: grads() becomes this micro-batch's gradient whatever it held,
//                as ZeroGrads() then kAccumulate gives it (up to fp32 summation order: cuBLASLt
//                may pick another algorithm for beta = 0), without the pass over the whole
//                buffer: every weight-gradient product writes its matrix (beta = 0, so it reads
//                nothing either) and one ZeroRanges launch zeroes the rest (norm parameters,
//                an untied embedding table, padding) before the backward pass adds into it.
//                PyTorch's zero_grad(set_to_none=True) saves the same pass.
enum class GradMode { kAccumulate, kOverwrite };

class LlamaCuda {
 public:
  // `config` validated; seq_len <= config.max_seq_len; head_dim 64 or 128 (the attention
  // kernels' tiles). INVALID_ARGUMENT otherwise; RESOURCE_EXHAUSTED when the GPU memory is too
  // small (the message says how much was asked).
  // The parameter, gradient and bf16 buffers hold buffer_size() = num_params() rounded up to a
  // multiple of `buffer_multiple` floats (ZeRO-1 splits them into that many equal shards); the
  // padding stays zero.
  // `attention_backward` picks the attention backward (attention_kernels.h): the default is
  // bit-reproducible; kAtomicDq is one pass fewer of attention work, with dq summed by float
  // atomics (train.deterministic: false).
  static StatusOr<std::unique_ptr<LlamaCuda>> Create(
      const ModelConfig& config, int max_batch, int seq_len, bool recompute, cudaStream_t stream,
      int64_t buffer_multiple = 1,
      AttentionBackwardMode attention_backward = AttentionBackwardMode::kDeterministic);
  ~LlamaCuda();
  LlamaCuda(const LlamaCuda&) = delete;
  LlamaCuda& operator=(const LlamaCuda&) = delete;

  const ModelConfig& config() const;
  const ParamLayout& layout() const;
  int max_batch() const;
  int seq_len() const;
  cudaStream_t stream() const;
  int64_t num_params() const;   // layout length, incl. alignment pad
  int64_t buffer_size() const;  // >= num_params(): see Create
  // Device buffers in ParamLayout order.
  float* params();  // fp32 master
  float* grads();   // fp32
  __nv_bfloat16* params_bf16();
  // Bytes of device memory this model holds (parameters, gradients, activations, scratch).
  int64_t device_bytes() const;

  // The CPU backend's initialisation (LlamaCpu::InitParams, bit for bit), uploaded.
  Status InitParams(uint64_t seed);
  // Host <-> device copies of the master parameters (num_params() floats); Upload refreshes
  // the bf16 copy. Both wait for the copy.
  Status UploadParams(const float* host);
  Status DownloadParams(float* host);
  // Recomputes the bf16 copy from the master (enqueued).
  Status RefreshBf16();
  Status ZeroGrads();  // enqueued

  // One micro-batch (host arrays [batch, seq_len]): adds the gradient of (mean loss *
  // grad_scale) to grads(), or with GradMode::kOverwrite writes it there, and returns the mean
  // loss. An error before the backward pass starts (a bad batch) leaves grads() untouched.
  StatusOr<double> ForwardBackward(const int32_t* inputs, const int32_t* targets, int batch,
                                   float grad_scale, const GradReadyFn& on_grads_ready = nullptr,
                                   GradMode grad_mode = GradMode::kAccumulate);
  // Forward only; the mean loss.
  StatusOr<double> Loss(const int32_t* inputs, const int32_t* targets, int batch);
  // Forward only; the bf16 logits [batch * seq_len, vocab] as floats (tests, generation).
  StatusOr<std::vector<float>> Logits(const int32_t* inputs, int batch);

  // Benchmarks: marks every phase of Loss / ForwardBackward (embedding.fwd, norm.fwd,
  // gemm.fwd, rope.fwd, attention.fwd, swiglu.fwd, lm_head.fwd, cross_entropy, lm_head.bwd,
  // norm.bwd, gemm.bwd, swiglu.bwd, attention.bwd (RoPE's backward included), recompute,
  // embedding.bwd, zero_grads (kOverwrite's zeroing), and host.wait for the wait at the end)
  // on stream() into `profiler`; null (the default) stops. The profiler must outlive its use;
  // flushing it is the caller's.
  void SetProfiler(PhaseProfiler* profiler);

  // Current DyT alpha of every norm layer (per block attention then FFN, then final); empty
  // for RMSNorm. Waits for the stream.
  StatusOr<std::vector<float>> Alphas();

 private:
  struct Impl;
  explicit LlamaCuda(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dyt::cuda
