#include "trainer/cpu/llama_decoder.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

#include "trainer/cpu/kernels.h"
#include "trainer/model/rng.h"

namespace dyt {

LlamaDecoder::LlamaDecoder(const ModelConfig& config, const float* params, int max_len)
    : config_(config), layout_(config), params_(params), max_len_(max_len) {
  assert(max_len <= config.max_seq_len);
  const ModelConfig& c = config_;
  const int64_t cache = int64_t(c.n_layers) * max_len * c.kv_dim();
  k_cache_.resize(cache);
  v_cache_.resize(cache);
  rope_cos_.resize(int64_t(max_len) * c.head_dim() / 2);
  rope_sin_.resize(rope_cos_.size());
  cpu::RopeTables(rope_cos_.data(), rope_sin_.data(), max_len, c.head_dim(), c.rope_theta);
  for (auto* v : {&x_, &h_, &q_, &att_, &proj_, &aux_}) v->resize(c.dim);
  for (auto* v : {&k_, &v_}) v->resize(c.kv_dim());
  for (auto* v : {&h1_, &h3_, &g_}) v->resize(c.ffn_dim);
  scores_.resize(max_len);
  logits_.resize(c.vocab_size);
}

void LlamaDecoder::Norm(const NormOffsets& off, float* y, const float* x) {
  const float* P = params_;
  if (config_.norm == NormKind::kDyt) {
    cpu::DytForward(y, aux_.data(), x, P[off.alpha], P + off.weight,
                    off.bias >= 0 ? P + off.bias : nullptr, 1, config_.dim);
  } else {
    cpu::RmsNormForward(y, aux_.data(), x, P + off.weight, config_.norm_eps, 1, config_.dim);
  }
}

const float* LlamaDecoder::Step(int32_t token) {
  assert(pos_ < max_len_);
  const ModelConfig& c = config_;
  const float* P = params_;
  const int D = c.dim, KVD = c.kv_dim(), F = c.ffn_dim, hd = c.head_dim();
  const int group = c.n_heads / c.n_kv_heads;
  const float scale = layout_.embed_scale() >= 0 ? P[layout_.embed_scale()] : 1.0f;
  const float att_scale = 1.0f / std::sqrt(float(hd));
  const float* cs = rope_cos_.data() + int64_t(pos_) * hd / 2;
  const float* sn = rope_sin_.data() + int64_t(pos_) * hd / 2;
  cpu::EmbeddingForward(x_.data(), &token, P + layout_.tok_embeddings(), scale, 1, D);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerOffsets& o = layout_.layer(l);
    Norm(o.attn_norm, h_.data(), x_.data());
    cpu::LinearForward(q_.data(), h_.data(), P + o.wq, 1, D, D);
    float* kc = k_cache_.data() + (int64_t(l) * max_len_ + pos_) * KVD;
    float* vc = v_cache_.data() + (int64_t(l) * max_len_ + pos_) * KVD;
    cpu::LinearForward(kc, h_.data(), P + o.wk, 1, D, KVD);
    cpu::LinearForward(vc, h_.data(), P + o.wv, 1, D, KVD);
    // The RoPE kernel rotates position 0 of its table: hand it this position's row.
    cpu::RopeForward(q_.data(), cs, sn, 1, 1, c.n_heads, hd);
    cpu::RopeForward(kc, cs, sn, 1, 1, c.n_kv_heads, hd);
    const float* K = k_cache_.data() + int64_t(l) * max_len_ * KVD;
    const float* V = v_cache_.data() + int64_t(l) * max_len_ * KVD;
    for (int h = 0; h < c.n_heads; ++h) {
      const float* q = q_.data() + h * hd;
      const int kvo = (h / group) * hd;
      float mx = -INFINITY;
      for (int j = 0; j <= pos_; ++j) {
        float s = 0;
        for (int i = 0; i < hd; ++i) s += q[i] * K[int64_t(j) * KVD + kvo + i];
        scores_[j] = s * att_scale;
        mx = std::max(mx, scores_[j]);
      }
      double sum = 0;
      for (int j = 0; j <= pos_; ++j) sum += (scores_[j] = std::exp(scores_[j] - mx));
      float* out = att_.data() + h * hd;
      std::fill(out, out + hd, 0.0f);
      for (int j = 0; j <= pos_; ++j) {
        const float p = float(scores_[j] / sum);
        for (int i = 0; i < hd; ++i) out[i] += p * V[int64_t(j) * KVD + kvo + i];
      }
    }
    cpu::LinearForward(proj_.data(), att_.data(), P + o.wo, 1, D, D);
    cpu::AddInPlace(x_.data(), proj_.data(), D);
    Norm(o.ffn_norm, h_.data(), x_.data());
    cpu::LinearForward(h1_.data(), h_.data(), P + o.w1, 1, D, F);
    cpu::LinearForward(h3_.data(), h_.data(), P + o.w3, 1, D, F);
    cpu::SwigluForward(g_.data(), h1_.data(), h3_.data(), F);
    cpu::LinearForward(proj_.data(), g_.data(), P + o.w2, 1, F, D);
    cpu::AddInPlace(x_.data(), proj_.data(), D);
  }
  Norm(layout_.final_norm(), h_.data(), x_.data());
  cpu::LinearForward(logits_.data(), h_.data(), P + layout_.output(), 1, D, c.vocab_size);
  ++pos_;
  return logits_.data();
}

int32_t SampleToken(float* logits, int vocab, const SamplingOptions& o, Rng& rng) {
  if (o.temperature <= 0) {
    return int32_t(std::max_element(logits, logits + vocab) - logits);
  }
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  // Candidates sorted by logit, descending (stable, so ties break by id: deterministic).
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int n = vocab;
  if (o.top_k > 0) n = std::min(n, o.top_k);
  const float mx = logits[idx[0]];
  std::vector<double> p(n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += (p[i] = std::exp(double(logits[idx[i]] - mx) / o.temperature));
  if (o.top_p < 1.0f) {
    double cum = 0;
    int keep = 0;
    while (keep < n && cum < o.top_p * sum) cum += p[keep++];
    n = std::max(keep, 1);
    sum = cum;
  }
  double u = rng.NextDouble() * sum;
  for (int i = 0; i < n; ++i) {
    if ((u -= p[i]) < 0) return idx[i];
  }
  return idx[n - 1];
}

}  // namespace dyt
