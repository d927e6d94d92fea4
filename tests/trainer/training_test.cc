// The training loop as a whole: it can learn, it is deterministic, gradient accumulation is
// equivalent to a bigger batch, and the learning-rate schedule has the documented shape.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/cpu/llama_cpu.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/train/trainer.h"

namespace dyt {
namespace {

TrainConfig Config(const std::string& yaml) {
  auto node = LoadYamlString(yaml);
  EXPECT_TRUE(node.ok());
  auto c = ParseTrainConfig(*node);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

std::vector<double> RunLosses(const TrainConfig& c) {
  auto t = Trainer::Create(c, nullptr);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  std::vector<double> losses;
  for (int64_t i = 0; i < c.train.steps; ++i) losses.push_back((*t)->TrainStep().value().loss);
  return losses;
}

TEST(TrainingTest, TinyModelMemorizesARepeatedBatch) {
  for (const char* norm : {"dyt", "rmsnorm"}) {
    const TrainConfig c = Config(std::string("model: {preset: test, norm: ") + norm +
                                 "}\n"
                                 "data: {synthetic: true, repeat_batch: true}\n"
                                 "train: {steps: 300, batch_size: 4}\n"
                                 "optimizer: {lr: 0.01, warmup_steps: 10, weight_decay: 0.0}\n");
    const auto losses = RunLosses(c);
    // Uniform guessing over 96 tokens costs ln(96) = 4.56 nats.
    EXPECT_GT(losses.front(), 4.0) << norm;
    EXPECT_LT(losses.back(), 0.05) << norm << ": the model failed to memorize one batch";
  }
}

TEST(TrainingTest, SameConfigAndSeedGiveBitIdenticalLosses) {
  const TrainConfig c = Config(
      "model: {preset: test}\ndata: {synthetic: true}\n"
      "train: {steps: 8, batch_size: 3, grad_accum: 2}\noptimizer: {lr: 0.003}\n");
  const auto a = RunLosses(c);
  const auto b = RunLosses(c);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "step " << i;
  TrainConfig other = c;
  other.train.seed = 2;
  EXPECT_NE(RunLosses(other)[0], a[0]) << "a different init seed must change the run";
}

TEST(TrainingTest, GradientAccumulationEqualsTheLargerBatch) {
  auto cfg = ModelPreset("test");
  ASSERT_TRUE(cfg.ok());
  cfg->Finalize();
  const int T = cfg->max_seq_len;
  LlamaCpu big(*cfg, 4, T), small(*cfg, 2, T);
  big.InitParams(3);
  small.InitParams(3);
  std::vector<int32_t> in(4 * T), tg(4 * T);
  for (int i = 0; i < 4 * T; ++i) {
    in[i] = (i * 7 + 3) % cfg->vocab_size;
    tg[i] = (i * 13 + 5) % cfg->vocab_size;
  }
  big.ZeroGrads();
  const double l_big = big.ForwardBackward(in.data(), tg.data(), 4);
  small.ZeroGrads();
  double l_small = small.ForwardBackward(in.data(), tg.data(), 2, 0.5f);
  l_small += small.ForwardBackward(in.data() + 2 * T, tg.data() + 2 * T, 2, 0.5f);
  EXPECT_NEAR(l_big, l_small / 2, 1e-6);
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < big.num_params(); ++i) {
    const double d = double(big.grads()[i]) - small.grads()[i];
    diff += d * d;
    norm += double(big.grads()[i]) * big.grads()[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
}

TEST(TrainingTest, LearningRateWarmsUpThenDecaysToTheFloor) {
  LrSchedule s{1e-3f, 1e-4f, 10, 110};
  EXPECT_FLOAT_EQ(s.At(0), 1e-4f);
  EXPECT_FLOAT_EQ(s.At(9), 1e-3f);
  EXPECT_FLOAT_EQ(s.At(10), 1e-3f);
  EXPECT_NEAR(s.At(60), 5.5e-4f, 1e-7);  // halfway through the cosine
  EXPECT_FLOAT_EQ(s.At(110), 1e-4f);
  EXPECT_FLOAT_EQ(s.At(500), 1e-4f);
  for (int i = 10; i < 110; ++i) EXPECT_GE(s.At(i), s.At(i + 1));
}

TEST(TrainingTest, ClippingBoundsTheGlobalNorm) {
  std::vector<float> g = {3.0f, 4.0f};
  EXPECT_NEAR(ClipGradNorm(g.data(), 2, 1.0f), 5.0, 1e-6);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0, 1e-5);
  std::vector<float> small = {0.3f, 0.4f};
  ClipGradNorm(small.data(), 2, 1.0f);
  EXPECT_FLOAT_EQ(small[0], 0.3f);  // under the bound: untouched
}

}  // namespace
}  // namespace dyt
