// The CUDA model and training backend against the CPU backend (the fp32 reference):
// identical initialisation, the loss and every parameter's gradient of one micro-batch within
// bf16 tolerance (DyT and RMSNorm, tied and untied embeddings, with and without activation
// recomputation), bit-identical gradients with recomputation and from run to run, and a
// 200-step training run whose loss tracks the CPU run within 2% at every logged step (the
// issue's bar), and checkpoints that move between the backends. Without a GPU every test SKIPs,
// except the one checking that asking for train.device cuda then is a clear error. The same file
// also builds into cuda_emu_tests, against the host emulation of the runtime and kernels
// (tests/cuda/emu/README.md), which runs on every machine.
#include "trainer/cuda/llama_cuda.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cpu/llama_cpu.h"
#include "trainer/cuda/cuda_backend.h"
#include "trainer/cuda/phase_profiler.h"
#include "trainer/train/trainer.h"

namespace dyt::cuda {
namespace {

struct ModelCase {
  NormKind norm;
  bool tied;
  bool recompute;
  bool atomic_dq = false;  // AttentionBackwardMode::kAtomicDq
};

std::string CaseName(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string name = info.param.norm == NormKind::kDyt ? "Dyt" : "RmsNorm";
  if (info.param.tied) name += "_Tied";
  if (info.param.recompute) name += "_Recompute";
  if (info.param.atomic_dq) name += "_AtomicDq";
  return name;
}

// head_dim 64 (the attention kernels' smallest tile), GQA 4/2, two blocks, odd-ish vocab.
ModelConfig SmallConfig(NormKind norm, bool tied) {
  ModelConfig c;
  c.vocab_size = 500;
  c.dim = 256;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 512;
  c.max_seq_len = 96;
  c.norm = norm;
  c.tie_embeddings = tied;
  c.Finalize();
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  return c;
}

std::vector<int32_t> RandomTokens(std::mt19937_64& rng, size_t n, int vocab) {
  std::uniform_int_distribution<int32_t> d(0, vocab - 1);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = d(rng);
  return t;
}

std::vector<float> Download(const float* dev, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  DYT_TEST_CUDA(cudaMemcpy(out.data(), dev, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

std::vector<float> Slice(const std::vector<float>& v, int64_t off, int64_t n) {
  return std::vector<float>(v.begin() + off, v.begin() + off + n);
}

std::vector<float> SliceOf(const float* p, int64_t off, int64_t n) {
  return std::vector<float>(p + off, p + off + n);
}

// Per tensor: ||gpu - cpu|| / ||cpu|| of the gradient, within tolerance by kind. Printed for
// every tensor so a GPU run shows where bf16 hurts most.
void ExpectGradsClose(const ParamLayout& layout, const std::vector<float>& gpu, const float* cpu) {
  const std::vector<float> all_cpu(cpu, cpu + layout.total());
  const double whole = test::RelL2(gpu, all_cpu);
  double norm = 0;
  for (float g : all_cpu) norm += double(g) * g;
  norm = std::sqrt(norm);
  std::printf("  grad (all parameters)                    rel err %.2e, ||cpu|| %.3e\n", whole,
              norm);
  EXPECT_LE(whole, 0.05) << "every gradient together: ||gpu - cpu|| / ||cpu|| = " << whole;
  for (const ParamTensor& t : layout.tensors()) {
    const std::vector<float> want = SliceOf(cpu, t.offset, t.numel);
    const std::vector<float> got = Slice(gpu, t.offset, t.numel);
    const double err = test::RelL2(got, want);
    std::printf("  grad %-40s rel err %.2e\n", t.name.c_str(), err);
    if (t.numel == 1) {
      // Scalars (alpha, embed_scale) sum terms of both signs over a whole layer: the sum can
      // nearly cancel, and bf16 rounding of its terms does not cancel with it. So: 10% of the
      // value, or 1% of the whole gradient's norm, whichever is looser.
      const double diff = std::abs(double(got[0]) - double(want[0]));
      EXPECT_LE(diff, std::max(0.1 * std::abs(double(want[0])), 0.01 * norm))
          << t.name << ": gpu " << got[0] << " cpu " << want[0];
    } else {
      EXPECT_LE(err, 0.05) << t.name << ": ||gpu - cpu|| / ||cpu|| = " << err;
    }
  }
}

class LlamaCudaTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(LlamaCudaTest, InitialisationIsTheCpuBackendsBitForBit) {
  DYT_REQUIRE_GPU();
  const ModelCase mc = GetParam();
  const ModelConfig c = SmallConfig(mc.norm, mc.tied);
  LlamaCpu cpu(c, 2, 64);
  cpu.InitParams(11);
  auto gpu = LlamaCuda::Create(c, 2, 64, mc.recompute, nullptr);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  DYT_ASSERT_OK((*gpu)->InitParams(11));
  const std::vector<float> got = Download((*gpu)->params(), (*gpu)->num_params());
  ASSERT_EQ(int64_t(got.size()), cpu.num_params());
  EXPECT_EQ(std::memcmp(got.data(), cpu.params(), got.size() * sizeof(float)), 0);
}

TEST_P(LlamaCudaTest, ForwardBackwardMatchesTheCpuBackend) {
  DYT_REQUIRE_GPU();
  const ModelCase mc = GetParam();
  const uint64_t seed = test::TestSeed();
  SCOPED_TRACE(testing::Message() << "seed=" << seed);
  std::mt19937_64 rng(seed);
  const ModelConfig c = SmallConfig(mc.norm, mc.tied);
  const int B = 2, T = 96;  // T not a multiple of the attention tile: partial tiles
  LlamaCpu cpu(c, B, T);
  cpu.InitParams(5);
  auto gpu_or = LlamaCuda::Create(
      c, B, T, mc.recompute, nullptr, 1,
      mc.atomic_dq ? AttentionBackwardMode::kAtomicDq : AttentionBackwardMode::kDeterministic);
  ASSERT_TRUE(gpu_or.ok()) << gpu_or.status().ToString();
  LlamaCuda& gpu = **gpu_or;
  DYT_ASSERT_OK(gpu.InitParams(5));
  const auto inputs = RandomTokens(rng, size_t(B) * T, c.vocab_size);
  const auto targets = RandomTokens(rng, size_t(B) * T, c.vocab_size);

  cpu.ZeroGrads();
  const double cpu_loss = cpu.ForwardBackward(inputs.data(), targets.data(), B, 0.5f);
  DYT_ASSERT_OK(gpu.ZeroGrads());
  auto gpu_loss = gpu.ForwardBackward(inputs.data(), targets.data(), B, 0.5f);
  ASSERT_TRUE(gpu_loss.ok()) << gpu_loss.status().ToString();
  std::printf("  loss cpu %.6f gpu %.6f\n", cpu_loss, *gpu_loss);
  EXPECT_NEAR(*gpu_loss, cpu_loss, 1e-2 * cpu_loss);
  ExpectGradsClose(cpu.layout(), Download(gpu.grads(), gpu.num_params()), cpu.grads());

  // The forward-only paths agree with the CPU too.
  auto gpu_eval = gpu.Loss(inputs.data(), targets.data(), B);
  ASSERT_TRUE(gpu_eval.ok()) << gpu_eval.status().ToString();
  EXPECT_NEAR(*gpu_eval, cpu.Loss(inputs.data(), targets.data(), B), 1e-2 * cpu_loss);
  auto logits = gpu.Logits(inputs.data(), 1);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  const float* cpu_logits = cpu.Logits(inputs.data(), 1);
  const std::vector<float> want(cpu_logits, cpu_logits + size_t(T) * c.vocab_size);
  EXPECT_LE(test::RelL2(*logits, want), test::kBf16Tol * 3);

  // Alphas read back from the device: the initial values.
  auto alphas = gpu.Alphas();
  ASSERT_TRUE(alphas.ok());
  EXPECT_EQ(*alphas, cpu.Alphas());
}

INSTANTIATE_TEST_SUITE_P(Cases, LlamaCudaTest,
                         ::testing::Values(ModelCase{NormKind::kDyt, false, false},
                                           ModelCase{NormKind::kDyt, true, false},
                                           ModelCase{NormKind::kDyt, false, true},
                                           ModelCase{NormKind::kRmsNorm, false, false},
                                           ModelCase{NormKind::kRmsNorm, true, true},
                                           ModelCase{NormKind::kDyt, true, false, true}),
                         CaseName);

// Gradients of `model` after ZeroGrads + one micro-batch.
std::vector<float> GradsOf(LlamaCuda& model, const std::vector<int32_t>& in,
                           const std::vector<int32_t>& tg, int B, double* loss) {
  EXPECT_TRUE(model.ZeroGrads().ok());
  auto l = model.ForwardBackward(in.data(), tg.data(), B, 1.0f);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  *loss = l.ok() ? *l : NAN;
  return Download(model.grads(), model.num_params());
}

class LlamaCudaDeterminismTest : public ::testing::TestWithParam<NormKind> {};

TEST_P(LlamaCudaDeterminismTest, RecomputeAndRepeatsGiveBitIdenticalGradients) {
  DYT_REQUIRE_GPU();
  std::mt19937_64 rng(3);
  const ModelConfig c = SmallConfig(GetParam(), false);
  const int B = 3, T = 80;
  auto plain = LlamaCuda::Create(c, B, T, false, nullptr);
  auto recompute = LlamaCuda::Create(c, B, T, true, nullptr);
  ASSERT_TRUE(plain.ok() && recompute.ok());
  DYT_ASSERT_OK((*plain)->InitParams(9));
  DYT_ASSERT_OK((*recompute)->InitParams(9));
  const auto in = RandomTokens(rng, size_t(B) * T, c.vocab_size);
  const auto tg = RandomTokens(rng, size_t(B) * T, c.vocab_size);
  double l1 = 0, l2 = 0, l3 = 0;
  const auto g1 = GradsOf(**plain, in, tg, B, &l1);
  const auto g2 = GradsOf(**plain, in, tg, B, &l2);
  const auto g3 = GradsOf(**recompute, in, tg, B, &l3);
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(l1, l3);
  EXPECT_EQ(std::memcmp(g1.data(), g2.data(), g1.size() * 4), 0) << "run to run";
  EXPECT_EQ(std::memcmp(g1.data(), g3.data(), g1.size() * 4), 0) << "recompute vs stored";
  // A smaller batch than planned works too.
  double l4 = 0;
  GradsOf(**plain, in, tg, 1, &l4);
  EXPECT_TRUE(std::isfinite(l4));
}

INSTANTIATE_TEST_SUITE_P(Norms, LlamaCudaDeterminismTest,
                         ::testing::Values(NormKind::kDyt, NormKind::kRmsNorm),
                         [](const ::testing::TestParamInfo<NormKind>& info) {
                           return std::string(info.param == NormKind::kDyt ? "Dyt" : "RmsNorm");
                         });

// The contract the overlapped all-reduce relies on: the GradReadyFn ranges cover the parameter
// buffer exactly once, and a range's gradients are final when it is reported (a copy taken at
// report time, after the stream has caught up, equals the gradient at the end). Also when the
// micro-batch overwrites the gradients (GradMode::kOverwrite, NaN in every byte before).
TEST_P(LlamaCudaDeterminismTest, GradientRangesArePartitionAndFinalWhenReported) {
  DYT_REQUIRE_GPU();
  for (const bool tied : {false, true}) {
    for (const bool recompute : {false, true}) {
      const GradMode mode = tied == recompute ? GradMode::kOverwrite : GradMode::kAccumulate;
      SCOPED_TRACE(std::string(tied ? "tied embeddings" : "untied") +
                   (recompute ? ", recompute" : "") +
                   (mode == GradMode::kOverwrite ? ", overwrite" : ""));
      std::mt19937_64 rng(4);
      const ModelConfig c = SmallConfig(GetParam(), tied);
      const int B = 2, T = 64;
      auto model = LlamaCuda::Create(c, B, T, recompute, nullptr);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      LlamaCuda& m = **model;
      DYT_ASSERT_OK(m.InitParams(5));
      if (mode == GradMode::kOverwrite) {
        DYT_TEST_CUDA(cudaMemset(m.grads(), 0xFF, size_t(m.buffer_size()) * sizeof(float)));
      } else {
        DYT_ASSERT_OK(m.ZeroGrads());
      }
      const auto in = RandomTokens(rng, size_t(B) * T, c.vocab_size);
      const auto tg = RandomTokens(rng, size_t(B) * T, c.vocab_size);
      struct Range {
        int64_t begin, end;
        std::vector<float> at_report;
      };
      std::vector<Range> ranges;
      auto l = m.ForwardBackward(
          in.data(), tg.data(), B, 1.0f,
          [&](int64_t b, int64_t e) {
            DYT_TEST_CUDA(cudaStreamSynchronize(m.stream()));
            std::vector<float> all = Download(m.grads(), m.num_params());
            ranges.push_back({b, e, Slice(all, b, e - b)});
            EXPECT_EQ(test::FirstNonFinite(ranges.back().at_report), -1)
                << "range [" << b << ", " << e << ") reported with unwritten gradients";
            return Status::Ok();
          },
          mode);
      ASSERT_TRUE(l.ok()) << l.status().ToString();
      ASSERT_EQ(ranges.size(), size_t(c.n_layers + 2)) << "head, one per block, embedding";
      std::vector<int> covered(size_t(m.num_params()), 0);
      for (const Range& r : ranges) {
        ASSERT_TRUE(r.begin >= 0 && r.begin < r.end && r.end <= m.num_params())
            << "[" << r.begin << ", " << r.end << ")";
        for (int64_t i = r.begin; i < r.end; ++i) ++covered[size_t(i)];
      }
      EXPECT_EQ(std::count(covered.begin(), covered.end(), 1), m.num_params())
          << "every float in exactly one range";
      const std::vector<float> final_grads = Download(m.grads(), m.num_params());
      for (const Range& r : ranges) {
        EXPECT_EQ(std::memcmp(r.at_report.data(), final_grads.data() + r.begin,
                              r.at_report.size() * sizeof(float)),
                  0)
            << "range [" << r.begin << ", " << r.end << ") changed after it was reported";
      }
    }
  }
}

// GradMode::kOverwrite: whatever the gradient buffer held (NaN in every byte here, padding
// included), one micro-batch leaves the gradients ZeroGrads + kAccumulate leaves, and a second
// micro-batch accumulated on top agrees too; tied and untied embeddings, with and without
// recomputation. Exact under the emulations (the products are CPU twins); on a GPU cuBLASLt may
// pick another algorithm for beta = 0 than for beta = 1, so within fp32 summation-order noise.
TEST_P(LlamaCudaDeterminismTest, OverwriteModeIgnoresWhatTheGradientsHeld) {
  DYT_REQUIRE_GPU();
  for (const bool tied : {false, true}) {
    for (const bool recompute : {false, true}) {
      SCOPED_TRACE(std::string(tied ? "tied embeddings" : "untied") +
                   (recompute ? ", recompute" : ""));
      std::mt19937_64 rng(12);
      const ModelConfig c = SmallConfig(GetParam(), tied);
      const int B = 2, T = 48;
      // A buffer_multiple that leaves padding after the last parameter.
      auto model = LlamaCuda::Create(c, B, T, recompute, nullptr, ParamLayout(c).total() + 5);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      LlamaCuda& m = **model;
      ASSERT_GT(m.buffer_size(), m.num_params());
      DYT_ASSERT_OK(m.InitParams(7));
      const auto in1 = RandomTokens(rng, size_t(B) * T, c.vocab_size);
      const auto tg1 = RandomTokens(rng, size_t(B) * T, c.vocab_size);
      const auto in2 = RandomTokens(rng, size_t(B) * T, c.vocab_size);
      const auto tg2 = RandomTokens(rng, size_t(B) * T, c.vocab_size);
      auto run = [&](const std::vector<int32_t>& in, const std::vector<int32_t>& tg,
                     GradMode mode) {
        auto l = m.ForwardBackward(in.data(), tg.data(), B, 1.0f, nullptr, mode);
        EXPECT_TRUE(l.ok()) << l.status().ToString();
        return std::pair{l.ok() ? *l : NAN, Download(m.grads(), m.buffer_size())};
      };
      DYT_ASSERT_OK(m.ZeroGrads());
      const auto [want_loss, want1] = run(in1, tg1, GradMode::kAccumulate);
      const auto want12 = run(in2, tg2, GradMode::kAccumulate).second;

      DYT_TEST_CUDA(cudaMemset(m.grads(), 0xFF, size_t(m.buffer_size()) * sizeof(float)));
      const auto [got_loss, got1] = run(in1, tg1, GradMode::kOverwrite);
      const auto got12 = run(in2, tg2, GradMode::kAccumulate).second;
      EXPECT_EQ(got_loss, want_loss);
      auto expect_same = [&](const std::vector<float>& got, const std::vector<float>& want) {
        EXPECT_EQ(test::FirstNonFinite(got), -1) << "an element was neither written nor zeroed";
#ifdef DYT_CUDA_HOST_EMULATION
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;
#else
        EXPECT_LE(test::RelL2(got, want), 1e-5);
#endif
        for (int64_t i = m.num_params(); i < m.buffer_size(); ++i) {
          ASSERT_EQ(got[size_t(i)], 0.f) << "padding element " << i;
        }
      };
      expect_same(got1, want1);
      expect_same(got12, want12);
    }
  }
}

// Profiling (benchmarks) charges every phase and changes nothing: the same gradients bit for
// bit, the phases add up to the measured GPU time, the forward and backward kinds all appear.
TEST_P(LlamaCudaDeterminismTest, ProfilingChangesNothingAndNamesEveryPhase) {
  DYT_REQUIRE_GPU();
  std::mt19937_64 rng(6);
  const ModelConfig c = SmallConfig(GetParam(), false);
  const int B = 2, T = 64;
  auto model = LlamaCuda::Create(c, B, T, /*recompute=*/true, nullptr);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  DYT_ASSERT_OK((*model)->InitParams(8));
  const auto in = RandomTokens(rng, size_t(B) * T, c.vocab_size);
  const auto tg = RandomTokens(rng, size_t(B) * T, c.vocab_size);
  double plain_loss = 0, profiled_loss = 0;
  const auto plain = GradsOf(**model, in, tg, B, &plain_loss);
  auto profiler = PhaseProfiler::Create();
  ASSERT_TRUE(profiler.ok()) << profiler.status().ToString();
  (*model)->SetProfiler(profiler->get());
  const auto profiled = GradsOf(**model, in, tg, B, &profiled_loss);
  DYT_ASSERT_OK((*profiler)->Flush((*model)->stream()));
  (*model)->SetProfiler(nullptr);
  EXPECT_EQ(plain_loss, profiled_loss);
  EXPECT_EQ(std::memcmp(plain.data(), profiled.data(), plain.size() * 4), 0);
  std::vector<std::string> names;
  for (const auto& [name, ms] : (*profiler)->totals()) {
    names.push_back(name);
    EXPECT_GE(ms, 0.0) << name;
  }
  for (const char* want :
       {"embedding.fwd", "norm.fwd", "gemm.fwd", "rope.fwd", "attention.fwd", "swiglu.fwd",
        "lm_head.fwd", "cross_entropy", "lm_head.bwd", "norm.bwd", "gemm.bwd", "swiglu.bwd",
        "attention.bwd", "recompute", "embedding.bwd", "host.wait"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  // RoPE's backward runs inside the attention backward (no phase of its own).
  EXPECT_EQ(std::find(names.begin(), names.end(), "rope.bwd"), names.end());
  EXPECT_GT((*profiler)->total_ms(), 0.0);
}

TEST(LlamaCudaShapeTest, RejectsShapesItCannotRun) {
  DYT_REQUIRE_GPU();
  ModelConfig c = SmallConfig(NormKind::kDyt, false);
  c.n_heads = 8;  // head_dim 32
  c.n_kv_heads = 8;
  ASSERT_TRUE(c.Validate().ok());
  auto m = LlamaCuda::Create(c, 1, 64, false, nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("head dimension"), std::string::npos)
      << m.status().ToString();
}

TrainConfig CurveConfig(const char* device) {
  const std::string yaml = std::string(
                               "model: {preset: tiny, vocab_size: 512, dim: 256, n_layers: 2, "
                               "n_heads: 4, n_kv_heads: 2, ffn_dim: 512, max_seq_len: 128}\n"
                               "data: {synthetic: true, repeat_batch: true}\n"
                               "train: {steps: 200, batch_size: 16, seq_len: 128, device: ") +
                           device +
                           "}\n"
                           "optimizer: {lr: 0.0002, warmup_steps: 20, weight_decay: 0.1}\n";
  auto node = LoadYamlString(yaml);
  EXPECT_TRUE(node.ok());
  auto c = ParseTrainConfig(*node);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

// The bar: 200 steps of a small model on the GPU track the CPU fp32 backend's loss
// within 2% at every logged step (every 10th, and the first). One repeated batch of 2048 tokens
// at a low learning rate: the CPU run goes from 6.24 to 3.71 (measured here), a real descent
// that never reaches the near-zero losses where a relative bound would only measure noise.
// Under the emulations (tests/cuda/emu: the backend's orchestration with the kernels' CPU
// twins; tests/cuda/simt: our kernels' own arithmetic, products as twins) 40 steps (through the
// warm-up) keep CI quick; $DYT_CURVE_STEPS sets another count (200 for the whole bar).
int CurveSteps() {
  if (const char* v = std::getenv("DYT_CURVE_STEPS"); v != nullptr && std::atoi(v) > 0) {
    return std::atoi(v);
  }
#ifdef DYT_CUDA_HOST_EMULATION
  return 40;
#else
  return 200;
#endif
}

TEST(CudaBackendTest, TwoHundredStepLossCurveTracksTheCpuBackend) {
  DYT_REQUIRE_GPU();
  auto cpu = Trainer::Create(CurveConfig("cpu"), nullptr);
  auto gpu = Trainer::Create(CurveConfig("cuda"), nullptr);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  EXPECT_STREQ((*gpu)->backend().name(), "cuda");
  double worst = 0;
  const int steps = CurveSteps();
  for (int step = 1; step <= steps; ++step) {
    auto a = (*cpu)->TrainStep();
    auto b = (*gpu)->TrainStep();
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    if (step == 1 || step % 10 == 0) {
      const double rel = std::abs(b->loss - a->loss) / a->loss;
      worst = std::max(worst, rel);
      std::printf("  step %3d loss cpu %.4f gpu %.4f (%.2f%%) grad_norm cpu %.3f gpu %.3f\n", step,
                  a->loss, b->loss, 100 * rel, a->grad_norm, b->grad_norm);
      EXPECT_LE(rel, 0.02) << "step " << step;
    }
  }
  std::printf("  worst relative loss difference over %d steps %.2e\n", steps, worst);
}

// ZeroGrads itself leaves the gradients to the next micro-batch (GradMode::kOverwrite), so an
// update with no micro-batch in between must still see zero gradients, not the last step's.
TEST(CudaBackendTest, UpdateWithNoMicroBatchSinceZeroGradsSeesZeroGradients) {
  DYT_REQUIRE_GPU();
  TrainConfig c = CurveConfig("cuda");
  auto be = CudaBackend::Create(c, nullptr);
  ASSERT_TRUE(be.ok()) << be.status().ToString();
  std::mt19937_64 rng(2);
  const int B = c.train.batch_size, T = c.train.seq_len;
  const auto in = RandomTokens(rng, size_t(B) * T, c.model.vocab_size);
  const auto tg = RandomTokens(rng, size_t(B) * T, c.model.vocab_size);
  for (int step = 0; step < 2; ++step) {
    DYT_ASSERT_OK((*be)->ZeroGrads());
    ASSERT_TRUE((*be)->ForwardBackward(in.data(), tg.data(), B, 1.0f).ok());
    auto norm = (*be)->ReduceAndUpdate(1e-3f, 1.0f);
    ASSERT_TRUE(norm.ok()) << norm.status().ToString();
    EXPECT_GT(*norm, 0.0);
  }
  DYT_ASSERT_OK((*be)->ZeroGrads());
  auto norm = (*be)->ReduceAndUpdate(1e-3f, 1.0f);
  ASSERT_TRUE(norm.ok()) << norm.status().ToString();
  EXPECT_EQ(*norm, 0.0);
  // And the next step's micro-batch writes its gradients over the zeros as usual.
  DYT_ASSERT_OK((*be)->ZeroGrads());
  ASSERT_TRUE((*be)->ForwardBackward(in.data(), tg.data(), B, 1.0f).ok());
  auto next = (*be)->ReduceAndUpdate(1e-3f, 1.0f);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_GT(*next, 0.0);
}

// The weight-decay runs of the one AdamW launch: an update with zero gradients changes exactly
// the decaying tensors, each by the decay factor (norms and scales excluded, as configured).
TEST(CudaBackendTest, WeightDecayReachesExactlyTheDecayingTensors) {
  DYT_REQUIRE_GPU();
  TrainConfig c = CurveConfig("cuda");
  c.optim.adamw.weight_decay = 0.5f;
  c.optim.adamw.no_decay_norms_and_scales = true;
  auto be = CudaBackend::Create(c, nullptr);
  ASSERT_TRUE(be.ok()) << be.status().ToString();
  auto before = (*be)->ExportState();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  DYT_ASSERT_OK((*be)->ZeroGrads());
  const float lr = 0.25f;
  ASSERT_TRUE((*be)->ReduceAndUpdate(lr, 1.0f).ok());
  auto after = (*be)->ExportState();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  test::ExpectOnlyWeightDecay((*be)->layout(), c.optim.adamw, lr, before->params, after->params);
}

// Export -> import into a fresh backend -> the same next step.
TEST(CudaBackendTest, StateRoundTripsThroughTheHost) {
  DYT_REQUIRE_GPU();
  TrainConfig c = CurveConfig("cuda");
  auto a = CudaBackend::Create(c, nullptr);
  auto b = CudaBackend::Create(c, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  std::mt19937_64 rng(1);
  const int B = c.train.batch_size, T = c.train.seq_len;
  const auto in = RandomTokens(rng, size_t(B) * T, c.model.vocab_size);
  const auto tg = RandomTokens(rng, size_t(B) * T, c.model.vocab_size);
  for (int i = 0; i < 3; ++i) {
    DYT_ASSERT_OK((*a)->ZeroGrads());
    ASSERT_TRUE((*a)->ForwardBackward(in.data(), tg.data(), B, 1.0f).ok());
    ASSERT_TRUE((*a)->ReduceAndUpdate(1e-3f, 1.0f).ok());
  }
  auto state = (*a)->ExportState();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->adam_step, 3);
  DYT_ASSERT_OK((*b)->ImportState(*state));
  EXPECT_EQ((*b)->step(), 3);
  double la = 0, lb = 0;
  for (auto* be : {a->get(), b->get()}) {
    DYT_ASSERT_OK(be->ZeroGrads());
    auto l = be->ForwardBackward(in.data(), tg.data(), B, 1.0f);
    ASSERT_TRUE(l.ok());
    (be == a->get() ? la : lb) = *l;
  }
  EXPECT_EQ(la, lb);
  // One more update on each: equal parameters only if the moments and the step count (bias
  // corrections) came back too.
  for (auto* be : {a->get(), b->get()}) ASSERT_TRUE(be->ReduceAndUpdate(1e-3f, 1.0f).ok());
  auto sa = (*a)->ExportState();
  auto sb = (*b)->ExportState();
  ASSERT_TRUE(sa.ok() && sb.ok());
  EXPECT_EQ(sa->params, sb->params);
  EXPECT_EQ(sa->adam_m, sb->adam_m);
  EXPECT_EQ(sa->adam_v, sb->adam_v);
  EXPECT_EQ(sa->adam_step, 4);
}

// "A run moves between backends": a checkpoint written by a CUDA run resumes on the CPU backend
// and a CPU one on CUDA, at the same step, and the next two steps' losses are within 2% (bf16)
// of the losses the writing run gets when it carries on itself (the second one depends on the
// update made with the restored moments and step count).
TEST(CudaBackendTest, CheckpointsMoveBetweenBackends) {
  DYT_REQUIRE_GPU();
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("dyt_cross_backend_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  for (const auto& [from, to] : {std::pair{"cuda", "cpu"}, std::pair{"cpu", "cuda"}}) {
    SCOPED_TRACE(std::string(from) + " -> " + to);
    TrainConfig a = CurveConfig(from);
    a.checkpoint.dir = (root / from).string();
    auto writer = Trainer::Create(a, nullptr);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*writer)->TrainStep().ok());
    DYT_ASSERT_OK((*writer)->SaveCheckpoint());
    std::vector<double> carried_on;
    for (int i = 0; i < 2; ++i) {
      auto st = (*writer)->TrainStep();
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      carried_on.push_back(st->loss);
    }

    TrainConfig b = CurveConfig(to);
    b.checkpoint.dir = a.checkpoint.dir;
    auto reader = Trainer::Create(b, nullptr);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_STREQ((*reader)->backend().name(), to);
    DYT_ASSERT_OK((*reader)->Resume("auto"));
    EXPECT_EQ((*reader)->step(), 5);
    for (int i = 0; i < 2; ++i) {
      auto resumed = (*reader)->TrainStep();
      ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
      std::printf("  %s -> %s: step %d loss %.5f (carried on) vs %.5f (resumed)\n", from, to, 6 + i,
                  carried_on[size_t(i)], resumed->loss);
      EXPECT_NEAR(resumed->loss, carried_on[size_t(i)], 0.02 * carried_on[size_t(i)]);
    }
    EXPECT_EQ((*reader)->step(), 7);
  }
  std::filesystem::remove_all(root);
}

TEST(CudaBackendTest, WithoutAGpuTheErrorNamesTrainDevice) {
  if (test::NoGpuReason().empty()) GTEST_SKIP() << "a GPU is present: nothing to refuse";
  auto t = Trainer::Create(CurveConfig("cuda"), nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(t.status().message().find("train.device"), std::string::npos) << t.status().ToString();
}

}  // namespace
}  // namespace dyt::cuda
