// Save + load: every field comes back bit-exact, the files are what docs/checkpoints.md says.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/checkpoint/test_util.h"
#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/checkpoint_writer.h"
#include "trainer/checkpoint/state_json.h"
#include "trainer/io/safetensors.h"

namespace dyt {
namespace {

using testing::MakeState;
using testing::SameBits;
using testing::TempDir;
using testing::TinyConfig;

void ExpectBitExact(const std::vector<float>& got, const std::vector<float>& want,
                    const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(SameBits(got[i], want[i]))
        << what << "[" << i << "]: " << got[i] << " vs " << want[i];
  }
}

void ExpectSameDouble(double got, double want, const char* what) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << what;
  } else {
    EXPECT_EQ(std::memcmp(&got, &want, sizeof(double)), 0) << what << ": " << got << " vs " << want;
  }
}

void ExpectSameState(const CheckpointState& got, const CheckpointState& want) {
  EXPECT_EQ(got.model_config_json, want.model_config_json);
  EXPECT_EQ(got.train_config_yaml, want.train_config_yaml);
  ExpectBitExact(got.params, want.params, "params");
  ExpectBitExact(got.adam_m, want.adam_m, "adam_m");
  ExpectBitExact(got.adam_v, want.adam_v, "adam_v");
  EXPECT_EQ(got.adam_step, want.adam_step);
  EXPECT_EQ(got.step, want.step);
  EXPECT_EQ(got.tokens_seen, want.tokens_seen);
  EXPECT_EQ(got.loader, want.loader);
  EXPECT_EQ(got.rng_state, want.rng_state);
  EXPECT_EQ(got.meta.job_id, want.meta.job_id);
  EXPECT_EQ(got.meta.attempt, want.meta.attempt);
  ExpectSameDouble(got.meta.train_loss, want.meta.train_loss, "train_loss");
  ExpectSameDouble(got.meta.val_loss, want.meta.val_loss, "val_loss");
  ExpectSameDouble(got.meta.unix_time, want.meta.unix_time, "unix_time");
  EXPECT_EQ(got.meta.code_version, want.meta.code_version);
  EXPECT_EQ(got.meta.world_size, want.meta.world_size);
  EXPECT_EQ(got.meta.tokenizer_id, want.meta.tokenizer_id);
}

TEST(CheckpointRoundTripTest, SaveThenLoadIsBitExact) {
  TempDir store;
  const ModelConfig config = TinyConfig();
  const ParamLayout layout(config);
  for (int64_t step : {3, 4}) {  // odd step: val_loss NaN; even: a number
    const CheckpointState state = MakeState(config, step);
    SaveResult result;
    ASSERT_TRUE(SaveCheckpoint(store.path(), state, layout, &result).ok());
    EXPECT_EQ(result.name, StepDirName(step));
    EXPECT_EQ(result.dir, store.Join(StepDirName(step)));
    auto loaded = LoadCheckpoint(result.dir, &config);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    ExpectSameState(*loaded, state);
  }
}

TEST(CheckpointRoundTripTest, WritesTheDocumentedFilesAndReportsSizeAndTime) {
  TempDir store;
  const ModelConfig config = TinyConfig();
  const ParamLayout layout(config);
  SaveResult result;
  ASSERT_TRUE(SaveCheckpoint(store.path(), MakeState(config, 7), layout, &result).ok());

  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(result.dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"manifest.json", "model.safetensors",
                                             "optimizer.safetensors", "state.json"}));
  int64_t total = 0;
  for (const std::string& n : names) total += testing::FileSize(result.dir + "/" + n);
  EXPECT_EQ(result.bytes, total);
  EXPECT_GE(result.seconds, 0.0);
  ASSERT_EQ(result.files.size(), 3u);
  EXPECT_EQ(result.files[0].name, "model.safetensors");
  EXPECT_EQ(result.files[0].size, testing::FileSize(result.dir + "/model.safetensors"));
  EXPECT_EQ(result.files[0].sha256.size(), 64u);
  EXPECT_EQ(testing::ReadText(store.Join("latest")), "step-00000007\n");

  // Tensor files: ParamLayout names and shapes, F32; optimizer moments under PyTorch's keys.
  auto model = ReadSafetensors(result.dir + "/model.safetensors");
  ASSERT_TRUE(model.ok());
  auto optimizer = ReadSafetensors(result.dir + "/optimizer.safetensors");
  ASSERT_TRUE(optimizer.ok());
  EXPECT_EQ(model->tensors.size(), layout.tensors().size());
  EXPECT_EQ(optimizer->tensors.size(), 2 * layout.tensors().size());
  for (const ParamTensor& t : layout.tensors()) {
    ASSERT_TRUE(model->tensors.count(t.name)) << t.name;
    EXPECT_EQ(model->tensors.at(t.name).shape, t.shape);
    EXPECT_EQ(model->tensors.at(t.name).dtype, StDtype::kF32);
    EXPECT_TRUE(optimizer->tensors.count("exp_avg." + t.name)) << t.name;
    EXPECT_TRUE(optimizer->tensors.count("exp_avg_sq." + t.name)) << t.name;
  }
  EXPECT_TRUE(model->tensors.count("layers.1.attention_norm.alpha"));
  EXPECT_TRUE(model->tensors.count("embed_scale"));

  // state.json is plain JSON a person (or the scheduler) can read.
  const auto state = nlohmann::json::parse(testing::ReadText(result.dir + "/state.json"));
  EXPECT_EQ(state["format"], "dyt-checkpoint");
  EXPECT_EQ(state["format_version"], 1);
  EXPECT_EQ(state["step"], 7);
  EXPECT_EQ(state["rng_state"].get<uint64_t>(), 0x8000000000000001ull + 7);
  EXPECT_TRUE(state["meta"]["val_loss"].is_null());  // NaN
  EXPECT_EQ(state["model_config"]["dim"], config.dim);
}

// meta.tokenizer_id: absent (checkpoints from before it) reads as unknown; anything but a
// SHA-256 in lowercase hex is refused, naming the field.
TEST(CheckpointRoundTripTest, TokenizerIdIsOptionalButMustBeASha256) {
  const CheckpointState state = MakeState(TinyConfig(), 2);
  ASSERT_EQ(state.meta.tokenizer_id.size(), 64u);
  auto json = nlohmann::ordered_json::parse(StateToJson(state));
  CheckpointState read;
  ASSERT_TRUE(StateFromJson(json.dump(), &read).ok());
  EXPECT_EQ(read.meta.tokenizer_id, state.meta.tokenizer_id);

  json["meta"].erase("tokenizer_id");
  read.meta.tokenizer_id = "stale";
  ASSERT_TRUE(StateFromJson(json.dump(), &read).ok());
  EXPECT_EQ(read.meta.tokenizer_id, "");

  for (const nlohmann::ordered_json& bad :
       {nlohmann::ordered_json("ABC"), nlohmann::ordered_json(std::string(64, 'A')),
        nlohmann::ordered_json(42)}) {
    json["meta"]["tokenizer_id"] = bad;
    const Status s = StateFromJson(json.dump(), &read);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << bad;
    EXPECT_NE(s.message().find("meta.tokenizer_id"), std::string::npos) << s.ToString();
  }
}

TEST(CheckpointRoundTripTest, RmsNormAndTiedEmbeddingsRoundTrip) {
  TempDir store;
  ModelConfig config = TinyConfig();
  config.norm = NormKind::kRmsNorm;
  config.embed_scale = -1;
  config.tie_embeddings = true;
  config.Finalize();
  ASSERT_TRUE(config.Validate().ok());
  const ParamLayout layout(config);
  const CheckpointState state = MakeState(config, 2);
  SaveResult result;
  ASSERT_TRUE(SaveCheckpoint(store.path(), state, layout, &result).ok());
  auto loaded = LoadCheckpoint(result.dir, &config);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ExpectSameState(*loaded, state);
}

TEST(CheckpointRoundTripTest, ResavingAStepReplacesItCompletely) {
  TempDir store;
  const ModelConfig config = TinyConfig();
  const ParamLayout layout(config);
  CheckpointState first = MakeState(config, 5);
  ASSERT_TRUE(SaveCheckpoint(store.path(), first, layout, nullptr).ok());
  CheckpointState second = MakeState(config, 5);
  for (const ParamTensor& t : layout.tensors()) {  // padding stays zero
    for (int64_t i = 0; i < t.numel; ++i) second.params[size_t(t.offset + i)] += 1.0f;
  }
  second.meta.job_id = "second-attempt";
  ASSERT_TRUE(SaveCheckpoint(store.path(), second, layout, nullptr).ok());

  auto loaded = LoadCheckpoint(store.Join("step-00000005"), &config);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ExpectSameState(*loaded, second);
  // Nothing left behind: no temp or old copies.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(store.path())) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step-00000005"}));
}

TEST(CheckpointRoundTripTest, SaveRejectsAStateThatWouldNotLoadAndWritesNothing) {
  TempDir store;
  const ModelConfig config = TinyConfig();
  ModelConfig other = config;
  other.n_layers = 3;
  const ParamLayout other_layout(other);

  Status s = SaveCheckpoint(store.path(), MakeState(config, 1), other_layout, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not the layout of model_config_json"), std::string::npos)
      << s.message();

  CheckpointState short_m = MakeState(config, 1);
  short_m.adam_m.pop_back();
  s = SaveCheckpoint(store.path(), short_m, ParamLayout(config), nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("must each hold"), std::string::npos) << s.message();

  CheckpointState bad_json = MakeState(config, 1);
  bad_json.model_config_json = "{";
  EXPECT_EQ(SaveCheckpoint(store.path(), bad_json, ParamLayout(config), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(std::filesystem::is_empty(store.path()));
}

TEST(CheckpointRoundTripTest, SaveCreatesAMissingStoreDirectory) {
  TempDir root;
  const ModelConfig config = TinyConfig();
  const std::string store = root.Join("a/b/store");
  ASSERT_TRUE(SaveCheckpoint(store, MakeState(config, 1), ParamLayout(config), nullptr).ok());
  auto point = FindLatestGood(store, &config);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  EXPECT_EQ(point->state.step, 1);
}

}  // namespace
}  // namespace dyt
