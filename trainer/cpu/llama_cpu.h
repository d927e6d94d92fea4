// The LLaMA-DyT model on the CPU backend: fp32 parameters, gradients and activations, the
// forward and backward passes written out layer by layer (trainer/cpu/kernels.h).
//
// All memory is planned in the constructor: one buffer for parameters, one for gradients
// (both in ParamLayout order) and one for activations of a micro-batch of up to
// `max_batch` sequences of exactly `seq_len` tokens. Nothing is allocated per step except
// a few KB of reduction partials inside kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/model/config.h"
#include "trainer/model/param_layout.h"

namespace dyt {

class LlamaCpu {
 public:
  // `config` must be validated; seq_len <= config.max_seq_len. The parameter and gradient
  // buffers are zero-padded to a multiple of `buffer_multiple` floats (data parallelism
  // splits them into equal per-rank shards).
  LlamaCpu(const ModelConfig& config, int max_batch, int seq_len, int64_t buffer_multiple = 1);

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  int max_batch() const { return max_batch_; }
  int seq_len() const { return T_; }
  int64_t num_params() const { return layout_.total(); }  // layout length, incl. alignment pad
  int64_t buffer_size() const { return int64_t(params_.size()); }  // >= num_params()
  float* params() { return params_.data(); }
  const float* params() const { return params_.data(); }
  float* grads() { return grads_.data(); }
  const float* grads() const { return grads_.data(); }
  int64_t activation_bytes() const { return int64_t(acts_.size()) * 4; }

  // Deterministic init from `seed`: N(0, init_std) for embeddings and matrices (each tensor
  // from its own stream, so adding a tensor does not change the others), constants for
  // alpha/gamma/beta/embed_scale.
  void InitParams(uint64_t seed);
  void ZeroGrads();

  // One micro-batch: inputs and targets are [batch, seq_len]. Adds the gradient of
  // (mean loss * grad_scale) to grads() and returns the mean loss.
  double ForwardBackward(const int32_t* inputs, const int32_t* targets, int batch,
                         float grad_scale = 1.0f);
  // Forward only; returns the mean loss.
  double Loss(const int32_t* inputs, const int32_t* targets, int batch);
  // Forward only, keeping the logits [batch * seq_len, vocab] of every position.
  const float* Logits(const int32_t* inputs, int batch);

  // Current DyT alpha of every norm layer, in order: per block attention then FFN, then the
  // final norm. Empty for RMSNorm.
  std::vector<float> Alphas() const;

 private:
  struct NormActs {
    float* y;    // norm output [N, D]
    float* aux;  // DyT: tanh(alpha x) [N, D]; RMSNorm: rstd [N]
  };
  struct LayerActs {
    NormActs n1, n2;
    float *q, *k, *v, *att, *lse, *resid_mid, *h1, *h3, *g;
  };

  void Forward(const int32_t* inputs, int batch);
  void NormForward(const NormOffsets& off, const NormActs& a, const float* x, int64_t N);
  void NormBackward(const NormOffsets& off, const NormActs& a, float* dx, const float* dy,
                    const float* x, int64_t N);

  ModelConfig config_;
  ParamLayout layout_;
  int max_batch_, T_;
  std::vector<float> params_, grads_, acts_;
  std::vector<float> rope_cos_, rope_sin_, attn_scratch_;
  // Activation views into acts_.
  std::vector<float*> resid_;  // n_layers + 1 residual streams [N, D]
  std::vector<LayerActs> layer_;
  NormActs final_norm_;
  float* logits_;
  float* proj_;  // [N, D] branch output before the residual add
  // Backward scratch.
  float *d_resid_, *d_norm_out_, *d_tmp_, *d_att_, *dq_, *dk_, *dv_, *dh1_, *dh3_, *dg_;
  int cur_batch_ = 0;
};

}  // namespace dyt
