#include "trainer/model/config.h"

#include <gtest/gtest.h>

#include "trainer/model/param_layout.h"
#include "trainer/train/train_config.h"

namespace dyt {
namespace {

StatusOr<ModelConfig> ParseModel(const std::string& yaml) {
  auto node = LoadYamlString(yaml);
  EXPECT_TRUE(node.ok());
  YamlReader r(*node, "model");
  return ParseModelConfig(r);
}

void ExpectInvalid(const std::string& yaml, const std::string& needle) {
  auto c = ParseModel(yaml);
  ASSERT_FALSE(c.ok()) << yaml;
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(needle), std::string::npos)
      << "message '" << c.status().message() << "' lacks '" << needle << "'";
}

TEST(ModelConfigTest, PresetsAreValidAndHaveExpectedShapes) {
  for (const auto& name : ModelPresetNames()) {
    auto c = ModelPreset(name);
    ASSERT_TRUE(c.ok());
    c->Finalize();
    EXPECT_TRUE(c->Validate().ok()) << name << ": " << c->Validate().ToString();
  }
  auto tiny = ParseModel("preset: tiny");
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->dim, 256);
  EXPECT_EQ(tiny->n_layers, 4);
  EXPECT_EQ(tiny->ffn_dim, 688);
  EXPECT_EQ(tiny->vocab_size, 4096);
  auto l7 = ModelPreset("llama-7b");
  ASSERT_TRUE(l7.ok());
  l7->Finalize();
  // LLaMA-7B: 6.74B parameters with untied embeddings (RMSNorm version).
  l7->norm = NormKind::kRmsNorm;
  l7->embed_scale = 0;
  EXPECT_EQ(l7->ParameterCount(), 6738415616);
}

TEST(ModelConfigTest, Alpha0DefaultsFollowThePaperTable) {
  EXPECT_FLOAT_EQ(DefaultAlpha0(1024).attn, 1.0f);
  EXPECT_FLOAT_EQ(DefaultAlpha0(1024).other, 1.0f);
  EXPECT_FLOAT_EQ(DefaultAlpha0(2048).other, 0.5f);
  EXPECT_FLOAT_EQ(DefaultAlpha0(4096).attn, 0.8f);
  EXPECT_FLOAT_EQ(DefaultAlpha0(4096).other, 0.2f);
  EXPECT_FLOAT_EQ(DefaultAlpha0(5120).attn, 0.6f);
  EXPECT_FLOAT_EQ(DefaultAlpha0(8192).other, 0.05f);
  auto c = ParseModel("preset: llama-7b");
  ASSERT_TRUE(c.ok());
  EXPECT_FLOAT_EQ(c->alpha0_attn, 0.8f);
  EXPECT_FLOAT_EQ(c->alpha0_ffn, 0.2f);
  EXPECT_FLOAT_EQ(c->alpha0_final, 0.2f);
  EXPECT_TRUE(c->has_embed_scale());
  auto over = ParseModel("preset: llama-7b\nalpha0_attn: 0.5");
  ASSERT_TRUE(over.ok());
  EXPECT_FLOAT_EQ(over->alpha0_attn, 0.5f);
  auto rms = ParseModel("preset: tiny\nnorm: rmsnorm");
  ASSERT_TRUE(rms.ok());
  EXPECT_FALSE(rms->has_embed_scale());
}

TEST(ModelConfigTest, DerivesFfnDimWithMultipleOf) {
  auto c = ParseModel("dim: 4096\nn_heads: 32\nffn_dim: 0\nmultiple_of: 256");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ffn_dim, 11008);  // LLaMA-7B's
  EXPECT_EQ(c->n_kv_heads, 32);
}

TEST(ModelConfigTest, RejectsInvalidShapesNamingTheField) {
  ExpectInvalid("dim: 250\nn_heads: 4", "model.dim: must be divisible by model.n_heads");
  ExpectInvalid("n_heads: 6\nn_kv_heads: 4\ndim: 384", "model.n_heads: must be divisible");
  ExpectInvalid("dim: 12\nn_heads: 4\nn_kv_heads: 4", "must be even for RoPE");
  ExpectInvalid("vocab_size: 0", "model.vocab_size: must be > 0");
  ExpectInvalid("n_layers: -2", "model.n_layers: must be > 0");
  ExpectInvalid("norm: layernorm", "model.norm: must be 'dyt' or 'rmsnorm'");
  ExpectInvalid("alpha0_attn: 0", "model.alpha0_attn: must be a positive finite number");
  ExpectInvalid("dim: abc", "model.dim: must be an integer");
  ExpectInvalid("dimm: 4", "model.dimm: unknown field");
  ExpectInvalid("preset: nope", "unknown preset 'nope'");
  ExpectInvalid(
      "vocab_size: 2000000000\ndim: 2000000000\nn_heads: 1\nn_kv_heads: 1\n"
      "ffn_dim: 2000000000\nn_layers: 2000000000\nmax_seq_len: 1",
      "overflows");
}

TEST(ParamLayoutTest, NamesShapesAndTies) {
  auto c = ParseModel("preset: test");
  ASSERT_TRUE(c.ok());
  ParamLayout l(*c);
  ASSERT_NE(l.Find("layers.1.attention.wk.weight"), nullptr);
  EXPECT_EQ(l.Find("layers.1.attention.wk.weight")->shape, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(l.Find("layers.0.attention_norm.alpha")->init_value, c->alpha0_attn);
  EXPECT_NE(l.Find("norm.bias"), nullptr);
  EXPECT_NE(l.Find("embed_scale"), nullptr);
  EXPECT_NE(l.Find("output.weight"), nullptr);
  int64_t numel = 0;
  for (const auto& t : l.tensors()) numel += t.numel;
  EXPECT_EQ(numel, c->ParameterCount());

  auto tied = ParseModel("preset: test\ntie_embeddings: true\ndyt_bias: false");
  ASSERT_TRUE(tied.ok());
  ParamLayout lt(*tied);
  EXPECT_EQ(lt.Find("output.weight"), nullptr);
  EXPECT_EQ(lt.Find("norm.bias"), nullptr);
  EXPECT_EQ(lt.output(), lt.tok_embeddings());
}

TEST(TrainConfigTest, ParsesAndRejectsWithFieldNames) {
  auto ok = LoadYamlString(
      "model: {preset: test}\ndata: {synthetic: true}\ntrain: {steps: 5, batch_size: 2}\n"
      "optimizer: {lr: 0.001, warmup_steps: 2}\n");
  ASSERT_TRUE(ok.ok());
  auto c = ParseTrainConfig(*ok);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->train.seq_len, 16);
  EXPECT_EQ(c->optim.schedule.total_steps, 5);
  EXPECT_FLOAT_EQ(c->optim.schedule.min_lr, 0.0001f);
  EXPECT_EQ(c->train.device, TrainDevice::kCpu);
  EXPECT_FALSE(c->train.recompute);
  EXPECT_TRUE(c->train.deterministic);
  auto gpu = LoadYamlString(
      "model: {preset: tiny}\ndata: {synthetic: true}\n"
      "train: {device: cuda, recompute: true, deterministic: false}\n");
  ASSERT_TRUE(gpu.ok());
  auto g = ParseTrainConfig(*gpu);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->train.device, TrainDevice::kCuda);
  EXPECT_TRUE(g->train.recompute);
  EXPECT_FALSE(g->train.deterministic);

  const std::pair<std::string, std::string> bad[] = {
      {"model: {preset: test}\ndata: {synthetic: true}\ntrain: {batch_size: 0}",
       "train.batch_size: must be >= 1"},
      {"model: {preset: test}\ndata: {synthetic: true}\ntrain: {seq_len: 17}",
       "train.seq_len: must be <= model.max_seq_len"},
      {"model: {preset: test}\ndata: {}\n", "data.train_paths: required"},
      {"model: {preset: test}\ndata: {synthetic: true}\noptimizer: {lr: -1}",
       "optimizer.lr: must be a positive finite number"},
      {"model: {preset: test}\ndata: {synthetic: true}\noptimizer: {beta2: 1.0}",
       "optimizer.beta2: must be in"},
      {"model: {preset: test}\ndata: {synthetic: true}\ntrian: {}", "trian: unknown field"},
      {"model: {preset: test}\ndata: {synthetic: true}\ntrain: {steps: x}",
       "train.steps: must be an integer"},
      {"model: {preset: test}\ndata: {synthetic: true}\ntrain: {device: gpu}",
       "train.device: must be cpu or cuda (got 'gpu')"},
      {"model: {preset: test}\ndata: {synthetic: true}\ntrain: {recompute: true}",
       "train.recompute: only valid with device cuda"},
      {"model: {preset: test}\ndata: {synthetic: true}\ntrain: {deterministic: false}",
       "train.deterministic: false is only valid with device cuda"},
      {"model: {preset: test}\ndata: {synthetic: true}\ntrain: {deterministic: 2}",
       "train.deterministic"},
      {"model: {preset: test}\ndata: {synthetic: true}\njob_attempt: -1",
       "job_attempt: must be >= 0"},
      {"model: {preset: test}\ndata: {synthetic: true}\ncheckpoint: {init_weights_only: true}",
       "checkpoint.init_weights_only: needs checkpoint.init_from"},
  };
  for (const auto& [yaml, needle] : bad) {
    auto node = LoadYamlString(yaml);
    ASSERT_TRUE(node.ok()) << yaml;
    auto r = ParseTrainConfig(*node);
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(r.status().message().find(needle), std::string::npos)
        << "'" << r.status().message() << "' lacks '" << needle << "'";
  }
  auto syntax = LoadYamlString("model: {preset: test\n");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("line"), std::string::npos);
}

}  // namespace
}  // namespace dyt
