#include "trainer/cuda/llama_cuda.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "trainer/cpu/kernels.h"
#include "trainer/cuda/attention_kernels.h"
#include "trainer/cuda/cross_entropy_kernels.h"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/device_buffer.h"
#include "trainer/cuda/dyt_kernels.h"
#include "trainer/cuda/embedding_kernels.h"
#include "trainer/cuda/gemm.h"
#include "trainer/cuda/phase_profiler.h"
#include "trainer/cuda/reduce_kernels.h"
#include "trainer/cuda/rmsnorm_kernels.h"
#include "trainer/cuda/rope_kernels.h"
#include "trainer/cuda/swiglu_kernels.h"
#include "trainer/cuda/zero_kernels.h"
#include "trainer/model/param_init.h"

namespace dyt::cuda {

namespace {

// Pinned host memory (cudaMallocHost), so the per-micro-batch uploads and the loss download
// are true asynchronous copies.
struct PinnedDeleter {
  void operator()(void* p) const { cudaFreeHost(p); }
};
template <typename T>
using PinnedPtr = std::unique_ptr<T[], PinnedDeleter>;

template <typename T>
StatusOr<PinnedPtr<T>> AllocatePinned(size_t count) {
  void* p = nullptr;
  DYT_CUDA_RETURN_IF_ERROR(cudaMallocHost(&p, std::max<size_t>(count, 1) * sizeof(T)));
  return PinnedPtr<T>(static_cast<T*>(p));
}

// The activations of one transformer block (all [N, *] with N = batch * seq_len).
struct LayerActs {
  float* resid_mid = nullptr;  // fp32 [N, D]: x + attention branch
  bf16* n1 = nullptr;          // attention norm output [N, D]
  bf16* qkv = nullptr;         // [N, D + 2 KVD]: q | k | v, q and k after RoPE
  bf16* att = nullptr;         // attention output [N, D]
  bf16* n2 = nullptr;          // FFN norm output [N, D]
  bf16* h1 = nullptr;          // [N, F] (dh1 in the backward)
  bf16* h3 = nullptr;          // [N, F] (dh3 in the backward)
  bf16* g = nullptr;           // [N, F] (dg in the backward)
  float* lse = nullptr;        // [B, H, T]
  float* rstd1 = nullptr;      // RMSNorm only: [N]
  float* rstd2 = nullptr;
};

// Slices of one device allocation, each 256-byte aligned (cuBLASLt's preferred alignment, and
// every kernel's 16-byte fast path).
class Arena {
 public:
  template <typename T>
  void Take(T** p, int64_t count) {
    slots_.push_back({reinterpret_cast<void**>(p), bytes_});
    bytes_ += (std::max<int64_t>(count, 1) * int64_t(sizeof(T)) + 255) / 256 * 256;
  }
  int64_t bytes() const { return bytes_; }
  void Bind(uint8_t* base) {
    for (auto& [ptr, off] : slots_) *ptr = base + off;
  }

 private:
  std::vector<std::pair<void**, int64_t>> slots_;
  int64_t bytes_ = 0;
};

// The parts of the gradient buffer [0, buffer_size) that no weight-gradient product writes
// whole, as sorted disjoint [begin, end) ranges: what GradMode::kOverwrite zeroes. The products
// cover wq|wk|wv (one product), wo, w1, w2, w3 of every block and the LM head (with tied
// embeddings, the table: the embedding's backward then adds onto what the head wrote).
std::vector<std::pair<int64_t, int64_t>> RangesNotOverwritten(const ModelConfig& c,
                                                              const ParamLayout& layout,
                                                              int64_t buffer_size) {
  const int64_t D = c.dim, F = c.ffn_dim, QKV = c.dim + 2 * int64_t(c.kv_dim());
  std::vector<std::pair<int64_t, int64_t>> covered;
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerOffsets& o = layout.layer(l);
    covered.push_back({o.wq, o.wq + QKV * D});
    covered.push_back({o.wo, o.wo + D * D});
    covered.push_back({o.w1, o.w1 + F * D});
    covered.push_back({o.w2, o.w2 + D * F});
    covered.push_back({o.w3, o.w3 + F * D});
  }
  covered.push_back({layout.output(), layout.output() + int64_t(c.vocab_size) * D});
  std::sort(covered.begin(), covered.end());
  std::vector<std::pair<int64_t, int64_t>> rest;
  int64_t at = 0;
  for (const auto& [b, e] : covered) {
    if (b > at) rest.push_back({at, b});
    at = std::max(at, e);
  }
  if (at < buffer_size) rest.push_back({at, buffer_size});
  return rest;
}

}  // namespace

struct LlamaCuda::Impl {
  ModelConfig c;
  ParamLayout layout;
  int max_batch = 0, T = 0;
  bool recompute = false;
  AttentionBackwardMode attention_backward = AttentionBackwardMode::kDeterministic;
  cudaStream_t stream = nullptr;
  Gemm gemm;
  PhaseProfiler* profiler = nullptr;  // benchmarks only

  DeviceBuffer<float> params, grads;
  DeviceBuffer<bf16> params16;
  DeviceBuffer<uint8_t> arena;
  int64_t device_bytes = 0;

  std::vector<float*> resid;      // n_layers + 1 residual streams, fp32 [N, D]
  std::vector<LayerActs> layers;  // with recompute, every entry is the same shared set
  bf16* final_y = nullptr;
  float* final_rstd = nullptr;
  bf16* logits = nullptr;  // [N, V]; dlogits after the loss
  bf16* proj = nullptr;    // [N, D]: a branch output before its residual add
  // Backward.
  bf16* d_resid = nullptr;  // [N, D]: gradient of the residual stream
  bf16* d_norm = nullptr;   // [N, D]: gradient of a norm's output
  bf16* d_att = nullptr;    // [N, D]
  bf16* d_qkv = nullptr;    // [N, D + 2 KVD]
  float* losses = nullptr;  // [N]
  double* loss_sum = nullptr;
  float* rope_cos = nullptr;
  float* rope_sin = nullptr;
  int32_t* d_inputs = nullptr;
  int32_t* d_targets = nullptr;
  int32_t* d_emb_unique = nullptr;
  int32_t* d_emb_offsets = nullptr;
  int32_t* d_emb_positions = nullptr;
  void* norm_scratch = nullptr;
  size_t norm_scratch_bytes = 0;
  void* attn_scratch = nullptr;
  size_t attn_scratch_bytes = 0;
  void* reduce_scratch = nullptr;
  size_t reduce_scratch_bytes = 0;
  void* emb_scratch = nullptr;
  size_t emb_scratch_bytes = 0;
  // GradMode::kOverwrite's zeroing (zero_kernels.h): RangesNotOverwritten as begin / prefix.
  int64_t* zero_begin = nullptr;
  int64_t* zero_prefix = nullptr;
  int zero_count = 0;
  int64_t zero_total = 0;

  PinnedPtr<int32_t> h_tokens;  // inputs [N] | targets [N] | unique [N] | offsets [N+1] | pos [N]
  PinnedPtr<double> h_loss;

  explicit Impl(const ModelConfig& config, Gemm g)
      : c(config), layout(config), gemm(std::move(g)) {}

  // Starts a profiled phase (SetProfiler); nothing without a profiler.
  void Mark(const char* phase) {
    if (profiler != nullptr) profiler->Mark(phase, stream);
  }
  // While alive, everything is charged to one phase (the marks inside are suppressed).
  class OnePhase {
   public:
    OnePhase(Impl* m, const char* phase) : m_(m), saved_(m->profiler) {
      m_->Mark(phase);
      m_->profiler = nullptr;
    }
    ~OnePhase() { m_->profiler = saved_; }
    OnePhase(const OnePhase&) = delete;
    OnePhase& operator=(const OnePhase&) = delete;

   private:
    Impl* m_;
    PhaseProfiler* saved_;
  };

  int D() const { return c.dim; }
  int KVD() const { return c.kv_dim(); }
  int QKV() const { return c.dim + 2 * c.kv_dim(); }
  int F() const { return c.ffn_dim; }
  int hd() const { return c.head_dim(); }
  bool dyt() const { return c.norm == NormKind::kDyt; }
  const float* P() const { return params.get(); }
  float* G() const { return grads.get(); }
  const bf16* W() const { return params16.get(); }

  AttentionShape Shape(int B) const {
    AttentionShape s;
    s.B = B;
    s.T = T;
    s.n_heads = c.n_heads;
    s.n_kv_heads = c.n_kv_heads;
    s.head_dim = hd();
    s.ld_q = s.ld_kv = QKV();
    s.ld_o = D();
    return s;
  }

  // The first float of layer l's parameters (its attention norm comes first in the layout).
  int64_t LayerBegin(int l) const {
    const NormOffsets& n = l < c.n_layers ? layout.layer(l).attn_norm : layout.final_norm();
    return n.alpha >= 0 ? n.alpha : n.weight;
  }

  // ---- norms: DyT or RMSNorm by the config -------------------------------------------------
  Status NormForward(const NormOffsets& o, bf16* y, float* rstd, const float* x, int64_t N) {
    if (dyt()) {
      return DytForward(y, x, P() + o.alpha, P() + o.weight, o.bias >= 0 ? P() + o.bias : nullptr,
                        N, D(), stream);
    }
    return RmsNormForward(y, rstd, x, P() + o.weight, c.norm_eps, N, D(), stream);
  }
  Status ResidualNormForward(const NormOffsets& o, float* r_out, bf16* y, float* rstd,
                             const float* r, const bf16* d, int64_t N) {
    if (dyt()) {
      return ResidualDytForward(r_out, y, r, d, P() + o.alpha, P() + o.weight,
                                o.bias >= 0 ? P() + o.bias : nullptr, N, D(), stream);
    }
    return ResidualRmsNormForward(r_out, y, rstd, r, d, P() + o.weight, c.norm_eps, N, D(), stream);
  }
  // dx = dr + d(norm)/dx^T dy (dr may be null; dx may alias dr); parameter gradients added.
  Status NormBackward(const NormOffsets& o, bf16* dx, const bf16* dy, const float* x,
                      const float* rstd, const bf16* dr, int64_t N) {
    if (dyt()) {
      return DytBackward(dx, G() + o.alpha, G() + o.weight, o.bias >= 0 ? G() + o.bias : nullptr,
                         dy, x, dr, P() + o.alpha, P() + o.weight, N, D(), norm_scratch,
                         norm_scratch_bytes, stream);
    }
    return RmsNormBackward(dx, G() + o.weight, dy, x, rstd, P() + o.weight, dr, N, D(),
                           norm_scratch, norm_scratch_bytes, stream);
  }

  // ---- forward -----------------------------------------------------------------------------
  // Block l from its n1 (already computed) to the FFN gate g; with `full`, also the FFN output
  // and the fused residual add + next norm (the next block's n1, or the final norm).
  Status BlockForward(int l, int B, bool full) {
    const int64_t N = int64_t(B) * T;
    const LayerOffsets& o = layout.layer(l);
    LayerActs& a = layers[l];
    Mark("gemm.fwd");
    DYT_RETURN_IF_ERROR(gemm.Forward(a.qkv, a.n1, W() + o.wq, N, D(), QKV(), stream));
    Mark("rope.fwd");
    // q and k heads are adjacent at the start of each qkv row: one launch rotates both.
    DYT_RETURN_IF_ERROR(RopeForward(a.qkv, QKV(), rope_cos, rope_sin, B, T,
                                    c.n_heads + c.n_kv_heads, hd(), stream));
    Mark("attention.fwd");
    DYT_RETURN_IF_ERROR(FlashAttentionForward(a.att, a.lse, a.qkv, a.qkv + D(), a.qkv + D() + KVD(),
                                              Shape(B), stream));
    Mark("gemm.fwd");
    DYT_RETURN_IF_ERROR(gemm.Forward(proj, a.att, W() + o.wo, N, D(), D(), stream));
    Mark("norm.fwd");
    DYT_RETURN_IF_ERROR(
        ResidualNormForward(o.ffn_norm, a.resid_mid, a.n2, a.rstd2, resid[l], proj, N));
    Mark("gemm.fwd");
    DYT_RETURN_IF_ERROR(gemm.Forward(a.h1, a.n2, W() + o.w1, N, D(), F(), stream));
    DYT_RETURN_IF_ERROR(gemm.Forward(a.h3, a.n2, W() + o.w3, N, D(), F(), stream));
    Mark("swiglu.fwd");
    DYT_RETURN_IF_ERROR(SwigluForward(a.g, a.h1, a.h3, N * F(), stream));
    if (!full) return Status::Ok();
    Mark("gemm.fwd");
    DYT_RETURN_IF_ERROR(gemm.Forward(proj, a.g, W() + o.w2, N, F(), D(), stream));
    Mark("norm.fwd");
    if (l + 1 < c.n_layers) {
      LayerActs& next = layers[l + 1];
      return ResidualNormForward(layout.layer(l + 1).attn_norm, resid[l + 1], next.n1, next.rstd1,
                                 a.resid_mid, proj, N);
    }
    return ResidualNormForward(layout.final_norm(), resid[l + 1], final_y, final_rstd, a.resid_mid,
                               proj, N);
  }

  Status Upload(const int32_t* inputs, const int32_t* targets, int B) {
    const int64_t N = int64_t(B) * T;
    int32_t* h_in = h_tokens.get();
    std::memcpy(h_in, inputs, size_t(N) * sizeof(int32_t));
    DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d_inputs, h_in, size_t(N) * sizeof(int32_t),
                                             cudaMemcpyHostToDevice, stream));
    if (targets != nullptr) {
      int32_t* h_tg = h_tokens.get() + int64_t(max_batch) * T;
      std::memcpy(h_tg, targets, size_t(N) * sizeof(int32_t));
      DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d_targets, h_tg, size_t(N) * sizeof(int32_t),
                                               cudaMemcpyHostToDevice, stream));
    }
    return Status::Ok();
  }

  Status Forward(const int32_t* inputs, const int32_t* targets, int B) {
    if (B < 1 || B > max_batch) {
      return InvalidArgument("LlamaCuda: batch " + std::to_string(B) + " is outside [1, " +
                             std::to_string(max_batch) + "]");
    }
    const int64_t N = int64_t(B) * T;
    Mark("embedding.fwd");
    DYT_RETURN_IF_ERROR(Upload(inputs, targets, B));
    const int64_t scale = layout.embed_scale();
    DYT_RETURN_IF_ERROR(EmbeddingForward(resid[0], d_inputs, P() + layout.tok_embeddings(),
                                         scale >= 0 ? P() + scale : nullptr, N, D(), stream));
    Mark("norm.fwd");
    DYT_RETURN_IF_ERROR(
        NormForward(layout.layer(0).attn_norm, layers[0].n1, layers[0].rstd1, resid[0], N));
    for (int l = 0; l < c.n_layers; ++l) DYT_RETURN_IF_ERROR(BlockForward(l, B, /*full=*/true));
    Mark("lm_head.fwd");
    return gemm.Forward(logits, final_y, W() + layout.output(), N, D(), c.vocab_size, stream);
  }

  // The mean of losses[0, N), waiting for the stream.
  StatusOr<double> MeanLoss(int64_t N) {
    DYT_RETURN_IF_ERROR(
        SumDevice(loss_sum, losses, N, reduce_scratch, reduce_scratch_bytes, stream));
    DYT_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(h_loss.get(), loss_sum, sizeof(double), cudaMemcpyDeviceToHost, stream));
    Mark("host.wait");
    DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    return h_loss[0] / double(N);
  }

  // ---- backward ----------------------------------------------------------------------------
  // With `overwrite` (GradMode::kOverwrite) the weight-gradient products write their matrices
  // and everything else is zeroed first, so nothing reads what the gradients held.
  Status Backward(int B, const GradReadyFn& ready, const int32_t* inputs, bool overwrite) {
    const int64_t N = int64_t(B) * T;
    const int V = c.vocab_size;
    const bool add = !overwrite;  // the weight-gradient products' `accumulate`
    if (overwrite) {
      Mark("zero_grads");
      DYT_RETURN_IF_ERROR(ZeroRanges(G(), zero_begin, zero_prefix, zero_count, zero_total, stream));
    }
    // Group the positions of each token for the embedding's deterministic backward (host work
    // that overlaps the GPU's backward pass; uploaded before the embedding kernel needs it).
    HostEmbeddingIndex index = BuildEmbeddingIndex(inputs, N);

    // LM head and final norm.
    Mark("lm_head.bwd");
    DYT_RETURN_IF_ERROR(
        gemm.BackwardWeight(G() + layout.output(), logits, final_y, N, D(), V, add, stream));
    DYT_RETURN_IF_ERROR(
        gemm.BackwardData(d_norm, logits, W() + layout.output(), N, D(), V, false, stream));
    Mark("norm.bwd");
    DYT_RETURN_IF_ERROR(NormBackward(layout.final_norm(), d_resid, d_norm, resid[c.n_layers],
                                     final_rstd, nullptr, N));
    if (ready) DYT_RETURN_IF_ERROR(ready(LayerBegin(c.n_layers), layout.total()));

    for (int l = c.n_layers - 1; l >= 0; --l) {
      const LayerOffsets& o = layout.layer(l);
      LayerActs& a = layers[l];
      // The shared set still holds the last block's activations from the forward pass (its
      // successor is the final norm, which has buffers of its own): only earlier blocks re-run.
      if (recompute && l != c.n_layers - 1) {
        OnePhase recomputed(this, "recompute");
        DYT_RETURN_IF_ERROR(NormForward(o.attn_norm, a.n1, a.rstd1, resid[l], N));
        DYT_RETURN_IF_ERROR(BlockForward(l, B, /*full=*/false));
      }
      // FFN: resid[l+1] = resid_mid + w2(silu(w1 n2) * w3 n2). g, h1, h3 become dg, dh1, dh3.
      Mark("gemm.bwd");
      DYT_RETURN_IF_ERROR(gemm.BackwardWeight(G() + o.w2, d_resid, a.g, N, F(), D(), add, stream));
      DYT_RETURN_IF_ERROR(gemm.BackwardData(a.g, d_resid, W() + o.w2, N, F(), D(), false, stream));
      Mark("swiglu.bwd");
      DYT_RETURN_IF_ERROR(SwigluBackward(a.h1, a.h3, a.g, a.h1, a.h3, N * F(), stream));
      Mark("gemm.bwd");
      DYT_RETURN_IF_ERROR(gemm.BackwardWeight(G() + o.w1, a.h1, a.n2, N, D(), F(), add, stream));
      DYT_RETURN_IF_ERROR(gemm.BackwardWeight(G() + o.w3, a.h3, a.n2, N, D(), F(), add, stream));
      DYT_RETURN_IF_ERROR(gemm.BackwardData(d_norm, a.h1, W() + o.w1, N, D(), F(), false, stream));
      DYT_RETURN_IF_ERROR(gemm.BackwardData(d_norm, a.h3, W() + o.w3, N, D(), F(), true, stream));
      Mark("norm.bwd");
      DYT_RETURN_IF_ERROR(
          NormBackward(o.ffn_norm, d_resid, d_norm, a.resid_mid, a.rstd2, d_resid, N));
      // Attention: resid_mid = resid[l] + wo(attn(rope(wq n1), rope(wk n1), wv n1)).
      Mark("gemm.bwd");
      DYT_RETURN_IF_ERROR(
          gemm.BackwardWeight(G() + o.wo, d_resid, a.att, N, D(), D(), add, stream));
      DYT_RETURN_IF_ERROR(
          gemm.BackwardData(d_att, d_resid, W() + o.wo, N, D(), D(), false, stream));
      Mark("attention.bwd");
      DYT_RETURN_IF_ERROR(FlashAttentionBackward(
          d_qkv, d_qkv + D(), d_qkv + D() + KVD(), QKV(), QKV(), d_att, a.att, a.lse, a.qkv,
          a.qkv + D(), a.qkv + D() + KVD(), Shape(B), attn_scratch, attn_scratch_bytes, stream,
          attention_backward, RopeTables{rope_cos, rope_sin}));  // + RoPE bwd
      // wq | wk | wv are adjacent rows of one [D + 2 KVD, D] matrix (checked in Create).
      Mark("gemm.bwd");
      DYT_RETURN_IF_ERROR(gemm.BackwardWeight(G() + o.wq, d_qkv, a.n1, N, D(), QKV(), add, stream));
      DYT_RETURN_IF_ERROR(
          gemm.BackwardData(d_norm, d_qkv, W() + o.wq, N, D(), QKV(), false, stream));
      Mark("norm.bwd");
      DYT_RETURN_IF_ERROR(
          NormBackward(o.attn_norm, d_resid, d_norm, resid[l], a.rstd1, d_resid, N));
      if (ready) DYT_RETURN_IF_ERROR(ready(LayerBegin(l), LayerBegin(l + 1)));
    }

    // Embedding (and its scale): upload the grouping, then one block per token.
    Mark("embedding.bwd");
    const int n_unique = int(index.unique.size());
    int32_t* h = h_tokens.get() + 2 * int64_t(max_batch) * T;
    int32_t* h_unique = h;
    int32_t* h_offsets = h_unique + int64_t(max_batch) * T;
    int32_t* h_positions = h_offsets + int64_t(max_batch) * T + 1;
    std::copy(index.unique.begin(), index.unique.end(), h_unique);
    std::copy(index.offsets.begin(), index.offsets.end(), h_offsets);
    std::copy(index.positions.begin(), index.positions.end(), h_positions);
    DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d_emb_unique, h_unique, n_unique * sizeof(int32_t),
                                             cudaMemcpyHostToDevice, stream));
    DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d_emb_offsets, h_offsets,
                                             (n_unique + 1) * sizeof(int32_t),
                                             cudaMemcpyHostToDevice, stream));
    DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
        d_emb_positions, h_positions, size_t(N) * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    EmbeddingIndex di;
    di.unique = d_emb_unique;
    di.offsets = d_emb_offsets;
    di.positions = d_emb_positions;
    di.n_unique = n_unique;
    const int64_t scale = layout.embed_scale();
    DYT_RETURN_IF_ERROR(EmbeddingBackward(
        G() + layout.tok_embeddings(), scale >= 0 ? G() + scale : nullptr, d_resid, di,
        P() + layout.tok_embeddings(), scale >= 0 ? P() + scale : nullptr, N, D(), emb_scratch,
        emb_scratch_bytes, stream));
    if (ready) DYT_RETURN_IF_ERROR(ready(0, LayerBegin(0)));
    return Status::Ok();
  }
};

LlamaCuda::LlamaCuda(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LlamaCuda::~LlamaCuda() = default;

StatusOr<std::unique_ptr<LlamaCuda>> LlamaCuda::Create(const ModelConfig& config, int max_batch,
                                                       int seq_len, bool recompute,
                                                       cudaStream_t stream, int64_t buffer_multiple,
                                                       AttentionBackwardMode attention_backward) {
  DYT_RETURN_IF_ERROR(config.Validate());
  if (buffer_multiple < 1) return InvalidArgument("LlamaCuda: buffer_multiple must be >= 1");
  if (max_batch < 1) return InvalidArgument("train.batch_size: must be >= 1");
  if (seq_len < 1 || seq_len > config.max_seq_len) {
    return InvalidArgument("train.seq_len: must be in [1, model.max_seq_len]");
  }
  const int hd = config.head_dim();
  if (hd != 64 && hd != 128) {
    return InvalidArgument("model.dim: head dimension dim / n_heads = " + std::to_string(hd) +
                           " is not supported on cuda (the attention kernels take 64 or 128)");
  }
  DYT_ASSIGN_OR_RETURN(Gemm gemm, Gemm::Create());
  auto impl = std::make_unique<Impl>(config, std::move(gemm));
  Impl& m = *impl;
  const ModelConfig& c = m.c;
  m.max_batch = max_batch;
  m.T = seq_len;
  m.recompute = recompute;
  m.attention_backward = attention_backward;
  m.stream = stream;
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerOffsets& o = m.layout.layer(l);
    if (o.wk != o.wq + int64_t(c.dim) * c.dim || o.wv != o.wk + int64_t(c.kv_dim()) * c.dim) {
      return Internal("LlamaCuda: wq, wk, wv of layer " + std::to_string(l) +
                      " are not adjacent in the parameter layout");
    }
  }

  const int64_t P = (m.layout.total() + buffer_multiple - 1) / buffer_multiple * buffer_multiple;
  DYT_ASSIGN_OR_RETURN(m.params, DeviceBuffer<float>::Allocate(size_t(P)));
  DYT_ASSIGN_OR_RETURN(m.grads, DeviceBuffer<float>::Allocate(size_t(P)));
  DYT_ASSIGN_OR_RETURN(m.params16, DeviceBuffer<bf16>::Allocate(size_t(P)));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(m.params.get(), 0, m.params.bytes(), stream));

  const int64_t N = int64_t(max_batch) * seq_len;
  const int64_t D = c.dim, F = c.ffn_dim, V = c.vocab_size, QKV = m.QKV();
  const int64_t lse = int64_t(max_batch) * c.n_heads * seq_len;
  const bool rms = c.norm == NormKind::kRmsNorm;
  Arena arena;
  m.resid.assign(c.n_layers + 1, nullptr);
  for (float*& r : m.resid) arena.Take(&r, N * D);
  m.layers.resize(c.n_layers);
  auto take_layer = [&](LayerActs& a) {
    arena.Take(&a.resid_mid, N * D);
    arena.Take(&a.n1, N * D);
    arena.Take(&a.qkv, N * QKV);
    arena.Take(&a.att, N * D);
    arena.Take(&a.n2, N * D);
    arena.Take(&a.h1, N * F);
    arena.Take(&a.h3, N * F);
    arena.Take(&a.g, N * F);
    arena.Take(&a.lse, lse);
    if (rms) {
      arena.Take(&a.rstd1, N);
      arena.Take(&a.rstd2, N);
    }
  };
  if (recompute) {
    take_layer(m.layers[0]);  // bound below, then copied to every layer
  } else {
    for (LayerActs& a : m.layers) take_layer(a);
  }
  arena.Take(&m.final_y, N * D);
  if (rms) arena.Take(&m.final_rstd, N);
  arena.Take(&m.logits, N * V);
  arena.Take(&m.proj, N * D);
  arena.Take(&m.d_resid, N * D);
  arena.Take(&m.d_norm, N * D);
  arena.Take(&m.d_att, N * D);
  arena.Take(&m.d_qkv, N * QKV);
  arena.Take(&m.losses, N);
  arena.Take(&m.loss_sum, 1);
  arena.Take(&m.rope_cos, int64_t(seq_len) * hd / 2);
  arena.Take(&m.rope_sin, int64_t(seq_len) * hd / 2);
  arena.Take(&m.d_inputs, N);
  arena.Take(&m.d_targets, N);
  arena.Take(&m.d_emb_unique, N);
  arena.Take(&m.d_emb_offsets, N + 1);
  arena.Take(&m.d_emb_positions, N);
  m.norm_scratch_bytes =
      std::max(DytBackwardScratchBytes(N, int(D)), RmsNormBackwardScratchBytes(N, int(D)));
  AttentionShape shape = m.Shape(max_batch);
  m.attn_scratch_bytes = FlashAttentionBackwardScratchBytes(shape, attention_backward);
  m.reduce_scratch_bytes = ReduceScratchBytes(N);
  m.emb_scratch_bytes = EmbeddingBackwardScratchBytes(int(std::min<int64_t>(N, V)));
  const auto zero_ranges = RangesNotOverwritten(c, m.layout, P);
  m.zero_count = int(zero_ranges.size());
  arena.Take(&m.zero_begin, m.zero_count);
  arena.Take(&m.zero_prefix, m.zero_count + 1);
  uint8_t *norm_s = nullptr, *attn_s = nullptr, *red_s = nullptr, *emb_s = nullptr;
  arena.Take(&norm_s, int64_t(m.norm_scratch_bytes));
  arena.Take(&attn_s, int64_t(m.attn_scratch_bytes));
  arena.Take(&red_s, int64_t(m.reduce_scratch_bytes));
  arena.Take(&emb_s, int64_t(m.emb_scratch_bytes));

  auto buf = DeviceBuffer<uint8_t>::Allocate(size_t(arena.bytes()));
  if (!buf.ok()) {
    return Status(StatusCode::kResourceExhausted,
                  "LlamaCuda: activations of " + std::to_string(max_batch) + " x " +
                      std::to_string(seq_len) + " tokens need " +
                      std::to_string(arena.bytes() >> 20) + " MiB of GPU memory (" +
                      buf.status().message() + "); lower train.batch_size or set train.recompute");
  }
  m.arena = std::move(buf).value();
  arena.Bind(m.arena.get());
  if (recompute) {
    for (LayerActs& a : m.layers) a = m.layers[0];
  }
  m.norm_scratch = norm_s;
  m.attn_scratch = attn_s;
  m.reduce_scratch = red_s;
  m.emb_scratch = emb_s;
  m.device_bytes = arena.bytes() + P * int64_t(4 + 4 + 2);

  // RoPE tables: the CPU's, uploaded (identical angles on both backends).
  std::vector<float> cos(size_t(seq_len) * hd / 2), sin(cos.size());
  cpu::RopeTables(cos.data(), sin.data(), seq_len, hd, c.rope_theta);
  // On the model's stream (a non-blocking stream does not wait for the legacy one), and
  // waited for before the host tables go away.
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.rope_cos, cos.data(), cos.size() * sizeof(float),
                                           cudaMemcpyHostToDevice, stream));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.rope_sin, sin.data(), sin.size() * sizeof(float),
                                           cudaMemcpyHostToDevice, stream));
  std::vector<int64_t> zero_begin, zero_prefix{0};
  for (const auto& [b, e] : zero_ranges) {
    zero_begin.push_back(b);
    zero_prefix.push_back(zero_prefix.back() + (e - b));
  }
  m.zero_total = zero_prefix.back();
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.zero_begin, zero_begin.data(),
                                           zero_begin.size() * sizeof(int64_t),
                                           cudaMemcpyHostToDevice, stream));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.zero_prefix, zero_prefix.data(),
                                           zero_prefix.size() * sizeof(int64_t),
                                           cudaMemcpyHostToDevice, stream));
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));

  DYT_ASSIGN_OR_RETURN(m.h_tokens, AllocatePinned<int32_t>(size_t(5 * N + 1)));
  DYT_ASSIGN_OR_RETURN(m.h_loss, AllocatePinned<double>(1));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(m.grads.get(), 0, m.grads.bytes(), stream));
  return std::unique_ptr<LlamaCuda>(new LlamaCuda(std::move(impl)));
}

const ModelConfig& LlamaCuda::config() const { return impl_->c; }
const ParamLayout& LlamaCuda::layout() const { return impl_->layout; }
int LlamaCuda::max_batch() const { return impl_->max_batch; }
int LlamaCuda::seq_len() const { return impl_->T; }
cudaStream_t LlamaCuda::stream() const { return impl_->stream; }
int64_t LlamaCuda::num_params() const { return impl_->layout.total(); }
int64_t LlamaCuda::buffer_size() const { return int64_t(impl_->params.size()); }
float* LlamaCuda::params() { return impl_->params.get(); }
float* LlamaCuda::grads() { return impl_->grads.get(); }
bf16* LlamaCuda::params_bf16() { return impl_->params16.get(); }
int64_t LlamaCuda::device_bytes() const { return impl_->device_bytes; }

Status LlamaCuda::InitParams(uint64_t seed) {
  std::vector<float> host(static_cast<size_t>(num_params()));
  InitParameters(impl_->c, impl_->layout, seed, host.data());
  return UploadParams(host.data());
}

Status LlamaCuda::UploadParams(const float* host) {
  Impl& m = *impl_;
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.params.get(), host,
                                           size_t(num_params()) * sizeof(float),
                                           cudaMemcpyHostToDevice, m.stream));
  DYT_RETURN_IF_ERROR(RefreshBf16());
  return CudaStatus(cudaStreamSynchronize(m.stream), "LlamaCuda::UploadParams");
}

Status LlamaCuda::DownloadParams(float* host) {
  Impl& m = *impl_;
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host, m.params.get(),
                                           size_t(num_params()) * sizeof(float),
                                           cudaMemcpyDeviceToHost, m.stream));
  return CudaStatus(cudaStreamSynchronize(m.stream), "LlamaCuda::DownloadParams");
}

Status LlamaCuda::RefreshBf16() {
  Impl& m = *impl_;
  return CastFp32ToBf16(m.params16.get(), m.params.get(), buffer_size(), m.stream);
}

Status LlamaCuda::ZeroGrads() {
  Impl& m = *impl_;
  return CudaStatus(cudaMemsetAsync(m.grads.get(), 0, m.grads.bytes(), m.stream),
                    "LlamaCuda::ZeroGrads");
}

StatusOr<double> LlamaCuda::ForwardBackward(const int32_t* inputs, const int32_t* targets,
                                            int batch, float grad_scale,
                                            const GradReadyFn& on_grads_ready, GradMode grad_mode) {
  Impl& m = *impl_;
  DYT_RETURN_IF_ERROR(m.Forward(inputs, targets, batch));
  const int64_t N = int64_t(batch) * m.T;
  m.Mark("cross_entropy");
  DYT_RETURN_IF_ERROR(CrossEntropyForwardBackward(m.logits, m.losses, m.d_targets, N,
                                                  m.c.vocab_size, grad_scale / float(N), m.stream));
  // The loss sum is enqueued now and read after the backward pass (one wait per micro-batch).
  DYT_RETURN_IF_ERROR(
      SumDevice(m.loss_sum, m.losses, N, m.reduce_scratch, m.reduce_scratch_bytes, m.stream));
  DYT_RETURN_IF_ERROR(m.Backward(batch, on_grads_ready, inputs, grad_mode == GradMode::kOverwrite));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.h_loss.get(), m.loss_sum, sizeof(double),
                                           cudaMemcpyDeviceToHost, m.stream));
  m.Mark("host.wait");
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(m.stream));
  return m.h_loss[0] / double(N);
}

StatusOr<double> LlamaCuda::Loss(const int32_t* inputs, const int32_t* targets, int batch) {
  Impl& m = *impl_;
  DYT_RETURN_IF_ERROR(m.Forward(inputs, targets, batch));
  const int64_t N = int64_t(batch) * m.T;
  m.Mark("cross_entropy");
  DYT_RETURN_IF_ERROR(
      CrossEntropyForward(m.logits, m.losses, m.d_targets, N, m.c.vocab_size, m.stream));
  return m.MeanLoss(N);
}

StatusOr<std::vector<float>> LlamaCuda::Logits(const int32_t* inputs, int batch) {
  Impl& m = *impl_;
  DYT_RETURN_IF_ERROR(m.Forward(inputs, nullptr, batch));
  const size_t n = size_t(batch) * m.T * m.c.vocab_size;
  std::vector<bf16> raw(n);
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(raw.data(), m.logits, n * sizeof(bf16), cudaMemcpyDeviceToHost, m.stream));
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(m.stream));
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = __bfloat162float(raw[i]);
  return out;
}

void LlamaCuda::SetProfiler(PhaseProfiler* profiler) { impl_->profiler = profiler; }

StatusOr<std::vector<float>> LlamaCuda::Alphas() {
  Impl& m = *impl_;
  std::vector<float> out;
  if (!m.dyt()) return out;
  std::vector<int64_t> offsets;
  for (int l = 0; l < m.c.n_layers; ++l) {
    offsets.push_back(m.layout.layer(l).attn_norm.alpha);
    offsets.push_back(m.layout.layer(l).ffn_norm.alpha);
  }
  offsets.push_back(m.layout.final_norm().alpha);
  out.resize(offsets.size());
  for (size_t i = 0; i < offsets.size(); ++i) {
    DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(&out[i], m.params.get() + offsets[i], sizeof(float),
                                             cudaMemcpyDeviceToHost, m.stream));
  }
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(m.stream));
  return out;
}

}  // namespace dyt::cuda
