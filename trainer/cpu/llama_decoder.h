// Token-by-token inference for text generation, with a KV cache.
//
// Each Step() runs one new token through the model at the next position, appending its keys
// and values to the cache, so generating n tokens costs O(n) layer passes and O(n^2 / 2)
// attention dot products in total instead of re-running the whole prefix every token.
// The logits it returns equal those of LlamaCpu's full forward at the same position (a test
// checks this), since both use the same kernels and the same RoPE tables.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/model/config.h"
#include "trainer/model/param_layout.h"

namespace dyt {

class LlamaDecoder {
 public:
  // `params` (ParamLayout order) must outlive the decoder. Caches up to `max_len` positions
  // (<= config.max_seq_len).
  LlamaDecoder(const ModelConfig& config, const float* params, int max_len);

  int position() const { return pos_; }
  int max_len() const { return max_len_; }
  // Forgets the cached prefix.
  void Reset() { pos_ = 0; }
  // Feeds `token` at position(); returns the logits [vocab] predicting the next token.
  // Precondition: position() < max_len().
  const float* Step(int32_t token);

 private:
  void Norm(const NormOffsets& off, float* y, const float* x);

  ModelConfig config_;
  ParamLayout layout_;
  const float* params_;
  int max_len_;
  int pos_ = 0;
  std::vector<float> k_cache_, v_cache_;  // [n_layers, max_len, kv_dim]
  std::vector<float> rope_cos_, rope_sin_;
  std::vector<float> x_, h_, q_, k_, v_, att_, proj_, h1_, h3_, g_, scores_, aux_, logits_;
};

// Sampling settings of dyt-generate.
struct SamplingOptions {
  float temperature = 0.8f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off (nucleus sampling otherwise)
  uint64_t seed = 1;
};

class Rng;
// Draws the next token from `logits` [vocab] (modified in place) with the given options.
int32_t SampleToken(float* logits, int vocab, const SamplingOptions& options, Rng& rng);

}  // namespace dyt
