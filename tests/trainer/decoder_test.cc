// The KV-cached decoder agrees with the training forward pass, and sampling honours its knobs.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/cpu/llama_cpu.h"
#include "trainer/cpu/llama_decoder.h"
#include "trainer/model/rng.h"

namespace dyt {
namespace {

TEST(DecoderTest, IncrementalLogitsEqualTheFullForward) {
  for (const char* norm : {"dyt", "rmsnorm"}) {
    auto node = LoadYamlString(std::string("preset: test\nnorm: ") + norm);
    ASSERT_TRUE(node.ok());
    YamlReader r(*node, "model");
    auto cfg = ParseModelConfig(r);
    ASSERT_TRUE(cfg.ok());
    const int T = cfg->max_seq_len;
    LlamaCpu model(*cfg, 1, T);
    model.InitParams(5);
    std::vector<int32_t> tokens(T);
    Rng rng(8);
    for (auto& t : tokens) t = int32_t(rng.NextBelow(cfg->vocab_size));
    const float* full = model.Logits(tokens.data(), 1);
    LlamaDecoder dec(*cfg, model.params(), T);
    for (int t = 0; t < T; ++t) {
      const float* step = dec.Step(tokens[t]);
      double diff = 0, norm2 = 0;
      for (int v = 0; v < cfg->vocab_size; ++v) {
        const double ref = full[int64_t(t) * cfg->vocab_size + v];
        diff += (step[v] - ref) * (step[v] - ref);
        norm2 += ref * ref;
      }
      EXPECT_LT(std::sqrt(diff / norm2), 1e-5) << norm << " position " << t;
    }
    EXPECT_EQ(dec.position(), T);
    dec.Reset();
    EXPECT_EQ(dec.position(), 0);
  }
}

TEST(DecoderTest, SamplingKnobs) {
  std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.9f, -1.0f};
  Rng rng(1);
  SamplingOptions greedy;
  greedy.temperature = 0;
  auto l = logits;
  EXPECT_EQ(SampleToken(l.data(), 5, greedy, rng), 1);
  SamplingOptions top1;
  top1.top_k = 1;
  for (int i = 0; i < 20; ++i) {
    l = logits;
    EXPECT_EQ(SampleToken(l.data(), 5, top1, rng), 1);
  }
  // top_k = 2 only ever returns the two best tokens, and both appear.
  SamplingOptions top2;
  top2.top_k = 2;
  top2.temperature = 1.0f;
  int seen[5] = {};
  for (int i = 0; i < 200; ++i) {
    l = logits;
    ++seen[SampleToken(l.data(), 5, top2, rng)];
  }
  EXPECT_EQ(seen[0] + seen[2] + seen[4], 0);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[3], 0);
  // A tiny nucleus keeps just the best token.
  SamplingOptions nucleus;
  nucleus.top_p = 0.01f;
  l = logits;
  EXPECT_EQ(SampleToken(l.data(), 5, nucleus, rng), 1);
  // Same seed, same draws.
  Rng a(42), b(42);
  SamplingOptions s;
  for (int i = 0; i < 10; ++i) {
    auto la = logits, lb = logits;
    EXPECT_EQ(SampleToken(la.data(), 5, s, a), SampleToken(lb.data(), 5, s, b));
  }
}

}  // namespace
}  // namespace dyt
