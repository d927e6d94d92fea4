#include "trainer/cpu/llama_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "trainer/cpu/kernels.h"
#include "trainer/model/param_init.h"

namespace dyt {

LlamaCpu::LlamaCpu(const ModelConfig& config, int max_batch, int seq_len, int64_t buffer_multiple)
    : config_(config), layout_(config), max_batch_(max_batch), T_(seq_len) {
  assert(seq_len <= config.max_seq_len && max_batch > 0);
  const ModelConfig& c = config_;
  const int64_t N = int64_t(max_batch) * seq_len;
  const int64_t D = c.dim, KVD = c.kv_dim(), F = c.ffn_dim, V = c.vocab_size;
  const bool dyt = c.norm == NormKind::kDyt;
  const int64_t norm_aux = dyt ? N * D : N;

  const int64_t m = std::max<int64_t>(1, buffer_multiple);
  params_.assign((layout_.total() + m - 1) / m * m, 0.0f);
  grads_.assign(params_.size(), 0.0f);

  // Plan the activation buffer: every view is a [offset, size] slice, 16-float aligned.
  int64_t total = 0;
  std::vector<std::pair<float**, int64_t>> plan;
  auto take = [&](float** p, int64_t n) {
    plan.push_back({p, total});
    total += (n + 15) / 16 * 16;
  };
  resid_.assign(c.n_layers + 1, nullptr);
  layer_.resize(c.n_layers);
  for (auto& r : resid_) take(&r, N * D);
  for (auto& l : layer_) {
    take(&l.n1.y, N * D);
    take(&l.n1.aux, norm_aux);
    take(&l.q, N * D);
    take(&l.k, N * KVD);
    take(&l.v, N * KVD);
    take(&l.att, N * D);
    take(&l.lse, int64_t(max_batch) * c.n_heads * seq_len);
    take(&l.resid_mid, N * D);
    take(&l.n2.y, N * D);
    take(&l.n2.aux, norm_aux);
    take(&l.h1, N * F);
    take(&l.h3, N * F);
    take(&l.g, N * F);
  }
  take(&final_norm_.y, N * D);
  take(&final_norm_.aux, norm_aux);
  take(&logits_, N * V);
  take(&proj_, N * D);
  for (float** p : {&d_resid_, &d_norm_out_, &d_tmp_, &d_att_, &dq_}) take(p, N * D);
  take(&dk_, N * KVD);
  take(&dv_, N * KVD);
  for (float** p : {&dh1_, &dh3_, &dg_}) take(p, N * F);
  acts_.assign(total, 0.0f);
  for (auto& [ptr, off] : plan) *ptr = acts_.data() + off;

  rope_cos_.resize(int64_t(seq_len) * c.head_dim() / 2);
  rope_sin_.resize(rope_cos_.size());
  cpu::RopeTables(rope_cos_.data(), rope_sin_.data(), seq_len, c.head_dim(), c.rope_theta);
  attn_scratch_.resize(cpu::AttentionScratchFloats(seq_len) * omp_get_max_threads());
}

void LlamaCpu::InitParams(uint64_t seed) {
  std::fill(params_.begin(), params_.end(), 0.0f);
  InitParameters(config_, layout_, seed, params_.data());
}

void LlamaCpu::ZeroGrads() { std::memset(grads_.data(), 0, grads_.size() * sizeof(float)); }

void LlamaCpu::NormForward(const NormOffsets& off, const NormActs& a, const float* x, int64_t N) {
  const float* P = params_.data();
  if (config_.norm == NormKind::kDyt) {
    cpu::DytForward(a.y, a.aux, x, P[off.alpha], P + off.weight,
                    off.bias >= 0 ? P + off.bias : nullptr, N, config_.dim);
  } else {
    cpu::RmsNormForward(a.y, a.aux, x, P + off.weight, config_.norm_eps, N, config_.dim);
  }
}

void LlamaCpu::NormBackward(const NormOffsets& off, const NormActs& a, float* dx, const float* dy,
                            const float* x, int64_t N) {
  const float* P = params_.data();
  float* G = grads_.data();
  if (config_.norm == NormKind::kDyt) {
    cpu::DytBackward(dx, G + off.alpha, G + off.weight, off.bias >= 0 ? G + off.bias : nullptr, dy,
                     x, a.aux, P[off.alpha], P + off.weight, N, config_.dim);
  } else {
    cpu::RmsNormBackward(dx, G + off.weight, dy, x, a.aux, P + off.weight, N, config_.dim);
  }
}

void LlamaCpu::Forward(const int32_t* inputs, int B) {
  assert(B <= max_batch_);
  cur_batch_ = B;
  const ModelConfig& c = config_;
  const float* P = params_.data();
  const int64_t N = int64_t(B) * T_;
  const int D = c.dim, KVD = c.kv_dim(), F = c.ffn_dim, hd = c.head_dim();
  const float scale = layout_.embed_scale() >= 0 ? P[layout_.embed_scale()] : 1.0f;
  cpu::EmbeddingForward(resid_[0], inputs, P + layout_.tok_embeddings(), scale, N, D);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerOffsets& o = layout_.layer(l);
    LayerActs& a = layer_[l];
    const float* x = resid_[l];
    NormForward(o.attn_norm, a.n1, x, N);
    cpu::LinearForward(a.q, a.n1.y, P + o.wq, N, D, D);
    cpu::LinearForward(a.k, a.n1.y, P + o.wk, N, D, KVD);
    cpu::LinearForward(a.v, a.n1.y, P + o.wv, N, D, KVD);
    cpu::RopeForward(a.q, rope_cos_.data(), rope_sin_.data(), B, T_, c.n_heads, hd);
    cpu::RopeForward(a.k, rope_cos_.data(), rope_sin_.data(), B, T_, c.n_kv_heads, hd);
    cpu::AttentionForward(a.att, a.lse, a.q, a.k, a.v, attn_scratch_.data(), B, T_, c.n_heads,
                          c.n_kv_heads, hd);
    cpu::LinearForward(proj_, a.att, P + o.wo, N, D, D);
    cpu::Add(a.resid_mid, x, proj_, N * D);
    NormForward(o.ffn_norm, a.n2, a.resid_mid, N);
    cpu::LinearForward(a.h1, a.n2.y, P + o.w1, N, D, F);
    cpu::LinearForward(a.h3, a.n2.y, P + o.w3, N, D, F);
    cpu::SwigluForward(a.g, a.h1, a.h3, N * F);
    cpu::LinearForward(proj_, a.g, P + o.w2, N, F, D);
    cpu::Add(resid_[l + 1], a.resid_mid, proj_, N * D);
  }
  NormForward(layout_.final_norm(), final_norm_, resid_[c.n_layers], N);
  cpu::LinearForward(logits_, final_norm_.y, P + layout_.output(), N, D, c.vocab_size);
}

double LlamaCpu::ForwardBackward(const int32_t* inputs, const int32_t* targets, int B,
                                 float grad_scale) {
  Forward(inputs, B);
  const ModelConfig& c = config_;
  const float* P = params_.data();
  float* G = grads_.data();
  const int64_t N = int64_t(B) * T_;
  const int D = c.dim, KVD = c.kv_dim(), F = c.ffn_dim, hd = c.head_dim();

  // Loss and dloss/dlogits in place of the logits.
  const double loss_sum =
      cpu::CrossEntropyForwardBackward(logits_, targets, N, c.vocab_size, grad_scale / float(N));

  // LM head and final norm.
  cpu::LinearBackward(d_norm_out_, G + layout_.output(), logits_, final_norm_.y,
                      P + layout_.output(), N, D, c.vocab_size);
  NormBackward(layout_.final_norm(), final_norm_, d_resid_, d_norm_out_, resid_[c.n_layers], N);

  for (int l = c.n_layers - 1; l >= 0; --l) {
    const LayerOffsets& o = layout_.layer(l);
    LayerActs& a = layer_[l];
    // FFN branch: resid[l+1] = resid_mid + w2(silu(w1 n2) * w3 n2).
    cpu::LinearBackward(dg_, G + o.w2, d_resid_, a.g, P + o.w2, N, F, D);
    cpu::SwigluBackward(dh1_, dh3_, dg_, a.h1, a.h3, N * F);
    cpu::LinearBackward(d_norm_out_, G + o.w1, dh1_, a.n2.y, P + o.w1, N, D, F);
    cpu::LinearBackward(d_norm_out_, G + o.w3, dh3_, a.n2.y, P + o.w3, N, D, F,
                        /*accumulate_dx=*/true);
    NormBackward(o.ffn_norm, a.n2, d_tmp_, d_norm_out_, a.resid_mid, N);
    cpu::AddInPlace(d_resid_, d_tmp_, N * D);  // now d resid_mid
    // Attention branch: resid_mid = resid[l] + wo(attn(rope(wq n1), rope(wk n1), wv n1)).
    cpu::LinearBackward(d_att_, G + o.wo, d_resid_, a.att, P + o.wo, N, D, D);
    cpu::AttentionBackward(dq_, dk_, dv_, d_att_, a.att, a.lse, a.q, a.k, a.v, attn_scratch_.data(),
                           B, T_, c.n_heads, c.n_kv_heads, hd);
    cpu::RopeBackward(dq_, rope_cos_.data(), rope_sin_.data(), B, T_, c.n_heads, hd);
    cpu::RopeBackward(dk_, rope_cos_.data(), rope_sin_.data(), B, T_, c.n_kv_heads, hd);
    cpu::LinearBackward(d_norm_out_, G + o.wq, dq_, a.n1.y, P + o.wq, N, D, D);
    cpu::LinearBackward(d_norm_out_, G + o.wk, dk_, a.n1.y, P + o.wk, N, D, KVD, true);
    cpu::LinearBackward(d_norm_out_, G + o.wv, dv_, a.n1.y, P + o.wv, N, D, KVD, true);
    NormBackward(o.attn_norm, a.n1, d_tmp_, d_norm_out_, resid_[l], N);
    cpu::AddInPlace(d_resid_, d_tmp_, N * D);  // now d resid[l]
  }
  const bool has_scale = layout_.embed_scale() >= 0;
  cpu::EmbeddingBackward(
      G + layout_.tok_embeddings(), has_scale ? G + layout_.embed_scale() : nullptr, d_resid_,
      inputs, P + layout_.tok_embeddings(), has_scale ? P[layout_.embed_scale()] : 1.0f, N, D);
  return loss_sum / double(N);
}

double LlamaCpu::Loss(const int32_t* inputs, const int32_t* targets, int B) {
  Forward(inputs, B);
  const int64_t N = int64_t(B) * T_;
  return cpu::CrossEntropyForward(logits_, targets, N, config_.vocab_size) / double(N);
}

const float* LlamaCpu::Logits(const int32_t* inputs, int B) {
  Forward(inputs, B);
  return logits_;
}

std::vector<float> LlamaCpu::Alphas() const {
  std::vector<float> out;
  if (config_.norm != NormKind::kDyt) return out;
  for (int l = 0; l < config_.n_layers; ++l) {
    out.push_back(params_[layout_.layer(l).attn_norm.alpha]);
    out.push_back(params_[layout_.layer(l).ffn_norm.alpha]);
  }
  out.push_back(params_[layout_.final_norm().alpha]);
  return out;
}

}  // namespace dyt
