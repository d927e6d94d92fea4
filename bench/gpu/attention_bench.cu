// dyt-gpu-attention-bench: our causal flash attention, forward and backward, at the attention
// shapes of the training benchmark's configs, in TFLOP/s. Its peer is
// bench/gpu/torch_attention.py (PyTorch SDPA on the same shapes and the same memory layout),
// run next to it by bench/gpu/run.sh, so the attention share of the step gap is measured by
// itself rather than inferred.
//
// Layout as in training: q, k, v are views of one [B*T, (H + 2 KVH) * hd] bf16 matrix (the
// fused qkv product), out/dout are [B*T, H * hd], dq/dk/dv views of one gradient matrix.
// FLOPs by the FlashAttention convention for causal attention: forward 4 B H T^2 hd / 2,
// backward 2.5 x forward (the useful work; our deterministic backward recomputes more, see
// attention_backward.cu). Median over batches of launches (CUDA events), after a warm-up.
// The backward is timed in each mode (attention_kernels.h): "dyt" (kDeterministic, the
// default), "dyt-ordered-dq" (kOrderedDq: one pass, still deterministic) and "dyt-atomic-dq"
// (kAtomicDq, train.deterministic: false), one JSON line each.
//
// Prints a table and one JSON line per shape: {"impl": "dyt", "op": "attention", ...}.
//   dyt-gpu-attention-bench [--config gpt-small|1b|all] [--batches 10] [--per-batch 5]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/gpu/bench_util.cuh"
#include "trainer/cuda/attention_kernels.h"

namespace {

using dyt::Status;
using dyt::bench::Alloc;
using dyt::bench::Median;
using dyt::bench::TimeBatches;
using dyt::cuda::AttentionShape;
using dyt::cuda::bf16;

struct Config {
  const char* name;
  int B, T, H, KVH, hd;
};

// The attention of bench/gpu/torch_train.py's configs (and dyt-gpu-train-bench's presets).
constexpr Config kConfigs[] = {
    {"gpt-small", 16, 1024, 12, 12, 64},
    {"1b", 8, 2048, 16, 16, 128},
};

int Run(const Config& c, int batches, int per_batch) {
  const int64_t N = int64_t(c.B) * c.T;
  const int64_t D = int64_t(c.H) * c.hd, KVD = int64_t(c.KVH) * c.hd, QKV = D + 2 * KVD;
  AttentionShape s;
  s.B = c.B;
  s.T = c.T;
  s.n_heads = c.H;
  s.n_kv_heads = c.KVH;
  s.head_dim = c.hd;
  s.ld_q = s.ld_kv = QKV;
  s.ld_o = D;
  bf16* qkv = Alloc<bf16>(size_t(N * QKV), 1u);
  bf16* dqkv = Alloc<bf16>(size_t(N * QKV), 2u);
  bf16* out = Alloc<bf16>(size_t(N * D), 3u);
  bf16* dout = Alloc<bf16>(size_t(N * D), 4u);
  float* lse = Alloc<float>(size_t(int64_t(c.B) * c.H * c.T), 5u);
  using Mode = dyt::cuda::AttentionBackwardMode;
  const size_t scratch_bytes = dyt::cuda::FlashAttentionBackwardScratchBytes(s, Mode::kOrderedDq);
  void* scratch = nullptr;
  BENCH_CUDA(cudaMalloc(&scratch, scratch_bytes));
  BENCH_CUDA(cudaDeviceSynchronize());

  auto fwd = [&](int) {
    return dyt::cuda::FlashAttentionForward(out, lse, qkv, qkv + D, qkv + D + KVD, s, nullptr);
  };
  auto bwd_in = [&](Mode mode) {
    return [&, mode](int) {
      return dyt::cuda::FlashAttentionBackward(dqkv, dqkv + D, dqkv + D + KVD, QKV, QKV, dout, out,
                                               lse, qkv, qkv + D, qkv + D + KVD, s, scratch,
                                               scratch_bytes, nullptr, mode);
    };
  };
  const dyt::bench::Timing tf = TimeBatches(batches, per_batch, fwd);  // also the bwd's inputs
  const double fwd_flop = 4.0 * c.B * c.H * double(c.T) * c.T * c.hd / 2;
  const double fwd_ms = Median(tf.per_launch);
  std::string error = tf.error;
  for (const auto& [mode, impl] :
       {std::pair{Mode::kDeterministic, "dyt"}, std::pair{Mode::kOrderedDq, "dyt-ordered-dq"},
        std::pair{Mode::kAtomicDq, "dyt-atomic-dq"}}) {
    const dyt::bench::Timing tb = TimeBatches(batches, per_batch, bwd_in(mode));
    const double bwd_ms = Median(tb.per_launch);
    const std::string err = !tf.error.empty() ? tf.error : tb.error;
    if (error.empty()) error = err;
    std::printf(
        "%-10s %-14s B %2d T %5d H %2d hd %3d   fwd %8.3f ms %6.1f TFLOP/s   bwd %8.3f ms %6.1f "
        "TFLOP/s%s%s\n",
        c.name, impl, c.B, c.T, c.H, c.hd, fwd_ms, fwd_ms > 0 ? fwd_flop / fwd_ms / 1e9 : 0.0,
        bwd_ms, bwd_ms > 0 ? 2.5 * fwd_flop / bwd_ms / 1e9 : 0.0,
        err.empty() ? "" : "   ERROR: ", err.c_str());
    std::printf(
        "{\"impl\": \"%s\", \"op\": \"attention\", \"config\": \"%s\", \"B\": %d, \"T\": %d, "
        "\"H\": %d, \"hd\": %d, \"fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"fwd_tflops\": %.1f, "
        "\"bwd_tflops\": %.1f, \"error\": \"%s\"}\n",
        impl, c.name, c.B, c.T, c.H, c.hd, fwd_ms, bwd_ms,
        fwd_ms > 0 ? fwd_flop / fwd_ms / 1e9 : 0.0,
        bwd_ms > 0 ? 2.5 * fwd_flop / bwd_ms / 1e9 : 0.0, err.empty() ? "" : "failed");
  }
  for (void* p : {static_cast<void*>(qkv), static_cast<void*>(dqkv), static_cast<void*>(out),
                  static_cast<void*>(dout), static_cast<void*>(lse), scratch}) {
    BENCH_CUDA(cudaFree(p));
  }
  return error.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dyt causal flash attention benchmark (forward, backward)"};
  std::string which = "all";
  int batches = 10, per_batch = 5;
  app.add_option("--config", which, "gpt-small, 1b or all")
      ->check(CLI::IsMember({"gpt-small", "1b", "all"}));
  app.add_option("--batches", batches, "timed batches")->check(CLI::PositiveNumber);
  app.add_option("--per-batch", per_batch, "launches per batch")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  int rc = 0;
  for (const Config& c : kConfigs) {
    if (which == "all" || which == c.name) rc |= Run(c, batches, per_batch);
  }
  return rc;
}
