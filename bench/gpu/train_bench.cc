// dyt-gpu-train-bench: full training steps of dyt's CUDA backend on one GPU, the same
// measurement as bench/gpu/torch_train.py (its PyTorch peer, run in the same script):
// forward, loss, backward, global-norm clip, AdamW, on random tokens, timed after warm-up.
// Prints one JSON line: tokens/s (batch * seq / median step time), model TFLOP/s (the PaLM
// convention of services/worker/model_flops.h), MFU, and the GPU memory in use at the end.
//
// --nondeterministic runs with train.deterministic: false (the one-pass attention backward,
// dq by float atomics); its JSON line says "impl": "dyt-atomic-dq".
//
//   dyt-gpu-train-bench --preset gpt-small --norm dyt [--batch 16] [--seq 1024] [--recompute]
//                       [--nondeterministic]
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "trainer/cuda/cuda_backend.h"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/phase_profiler.h"
#include "trainer/train/train_config.h"

namespace {

double FlopsPerToken(const dyt::ModelConfig& c, int seq) {
  const double D = c.dim, F = c.ffn_dim, KV = c.kv_dim(), L = c.n_layers, V = c.vocab_size;
  const double per_layer = D * (D + 2 * KV) + D * D + 3 * D * F;
  const double n = L * per_layer + V * D;  // matrix-product parameters (not the input lookup)
  return 6 * n + 12 * L * D * seq;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dyt CUDA training-step benchmark"};
  std::string preset = "gpt-small", norm = "dyt";
  int batch = 0, seq = 0, warmup = 5, steps = 20, profile_steps = 3;
  bool recompute = false, nondeterministic = false;
  double peak_tflops = 989.0;
  app.add_option("--preset", preset, "model preset (trainer/model/config.cc)");
  app.add_option("--norm", norm, "dyt or rmsnorm")->check(CLI::IsMember({"dyt", "rmsnorm"}));
  app.add_option("--batch", batch, "sequences per step (0: 16 for gpt-small, 8 otherwise)");
  app.add_option("--seq", seq, "sequence length (0: the preset's max_seq_len)");
  app.add_option("--warmup", warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--profile-steps", profile_steps, "profiled steps after the timed ones (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--recompute", recompute, "recompute activations in the backward pass");
  app.add_flag("--nondeterministic", nondeterministic,
               "train.deterministic: false (attention backward with dq by float atomics)");
  app.add_option("--peak-tflops", peak_tflops, "dense bf16 peak for MFU (H100/H200 SXM: 989)");
  CLI11_PARSE(app, argc, argv);

  auto model = dyt::ModelPreset(preset);
  if (!model.ok()) {
    std::fprintf(stderr, "--preset: %s\n", model.status().ToString().c_str());
    return 2;
  }
  model->norm = norm == "dyt" ? dyt::NormKind::kDyt : dyt::NormKind::kRmsNorm;
  model->embed_scale = -1;
  model->alpha0_attn = model->alpha0_ffn = model->alpha0_final = -1;
  model->Finalize();
  dyt::TrainConfig config;
  config.model = *model;
  config.train.batch_size = batch > 0 ? batch : (preset == "gpt-small" ? 16 : 8);
  config.train.seq_len = seq > 0 ? seq : model->max_seq_len;
  config.train.recompute = recompute;
  config.train.deterministic = !nondeterministic;
  config.train.device = dyt::TrainDevice::kCuda;
  const int B = config.train.batch_size, T = config.train.seq_len;

  auto backend = dyt::cuda::CudaBackend::Create(config, nullptr);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 1;
  }
  std::mt19937_64 rng(0);
  std::uniform_int_distribution<int32_t> tok(0, model->vocab_size - 1);
  std::vector<int32_t> inputs(size_t(B) * T), targets(inputs.size());
  for (auto& t : inputs) t = tok(rng);
  for (auto& t : targets) t = tok(rng);

  double loss = 0, norm_value = 0;
  // One whole step: zero, forward + backward, clip + AdamW, and a wait for all of it (the
  // grad-norm readback is one wait; the device synchronisation makes the step whole).
  auto run_step = [&]() -> dyt::Status {
    dyt::Status st = (*backend)->ZeroGrads();
    auto l = st.ok() ? (*backend)->ForwardBackward(inputs.data(), targets.data(), B, 1.0f)
                     : dyt::StatusOr<double>(st);
    auto n = l.ok() ? (*backend)->ReduceAndUpdate(3e-4f, 1.0f) : dyt::StatusOr<double>(l.status());
    if (!n.ok()) return n.status();
    loss = *l;
    norm_value = *n;
    return dyt::cuda::CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  };
  std::vector<double> times;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (const dyt::Status st = run_step(); !st.ok()) {
      std::fprintf(stderr, "step %d: %s\n", i, st.ToString().c_str());
      return 1;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(s);
  }
  const double timed_loss = loss, timed_norm = norm_value;  // the last timed step's

  // The phase breakdown, on steps of their own (the timed ones ran without the events).
  std::string phases_json;
  if (profile_steps > 0) {
    auto profiler = dyt::cuda::PhaseProfiler::Create();
    if (!profiler.ok()) {
      std::fprintf(stderr, "profiler: %s\n", profiler.status().ToString().c_str());
      return 1;
    }
    (*backend)->SetProfiler(profiler->get());
    for (int i = 0; i < profile_steps; ++i) {
      dyt::Status st = run_step();
      if (st.ok()) st = (*profiler)->Flush((*backend)->stream());
      if (!st.ok()) {
        std::fprintf(stderr, "profiled step %d: %s\n", i, st.ToString().c_str());
        return 1;
      }
    }
    (*backend)->SetProfiler(nullptr);
    const double total = (*profiler)->total_ms();
    std::printf("%-16s %10s %7s   (%d profiled steps, %s %s)\n", "phase", "ms/step", "share",
                profile_steps, preset.c_str(), norm.c_str());
    for (const auto& [name, ms] : (*profiler)->totals()) {
      std::printf("%-16s %10.3f %6.1f%%\n", name.c_str(), ms / profile_steps,
                  total > 0 ? 100 * ms / total : 0.0);
      phases_json += (phases_json.empty() ? "" : ", ") + ("\"" + name + "\": ") +
                     std::to_string(ms / profile_steps);
    }
    std::printf("%-16s %10.3f\n", "total", total / profile_steps);
  }
  std::sort(times.begin(), times.end());
  const double step_s = times[times.size() / 2];
  const double tok_s = double(B) * T / step_s;
  const double tflops = FlopsPerToken(*model, T) * tok_s / 1e12;
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  std::printf(
      "{\"impl\": \"%s\", \"config\": \"%s\", \"norm\": \"%s\", \"batch\": %d, \"seq\": %d, "
      "\"params\": %lld, \"recompute\": %s, \"tokens_per_s\": %.1f, \"step_ms\": %.3f, "
      "\"step_ms_min\": %.3f, \"model_tflops\": %.4g, \"mfu\": %.4g, \"mem_in_use_gib\": %.2f, "
      "\"loss\": %.4f, \"grad_norm\": %.4f, \"device\": \"%s\", \"phases_ms\": {%s}}\n",
      nondeterministic ? "dyt-atomic-dq" : "dyt", preset.c_str(), norm.c_str(), B, T,
      static_cast<long long>(model->ParameterCount()), recompute ? "true" : "false", tok_s,
      step_s * 1e3, times.front() * 1e3, tflops, tflops / peak_tflops,
      double(total_b - free_b) / double(1 << 30), timed_loss, timed_norm,
      (*backend)->DeviceSummary().c_str(), phases_json.c_str());
  return 0;
}
