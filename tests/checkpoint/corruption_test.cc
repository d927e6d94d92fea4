// Damaged or foreign checkpoints: each problem is found and named, nothing partial is returned.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/checkpoint/test_util.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_writer.h"

namespace dyt {
namespace {

using testing::MakeState;
using testing::TempDir;
using testing::TinyConfig;

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SaveResult r;
    ASSERT_TRUE(
        SaveCheckpoint(store_.path(), MakeState(config_, 123), ParamLayout(config_), &r).ok());
    dir_ = r.dir;
  }
  // Loads and expects failure with `code` and every piece of `texts` in the message.
  void ExpectLoadFails(StatusCode code, std::initializer_list<std::string> texts,
                       const ModelConfig* expect = nullptr) {
    auto r = LoadCheckpoint(dir_, expect ? expect : &config_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    for (const std::string& t : texts) {
      EXPECT_NE(r.status().message().find(t), std::string::npos)
          << "want \"" << t << "\" in: " << r.status().message();
    }
    // VerifyCheckpoint agrees on damage (it does not look at the config).
    if (code == StatusCode::kDataLoss) {
      EXPECT_FALSE(VerifyCheckpoint(dir_).ok());
    }
  }

  TempDir store_;
  const ModelConfig config_ = TinyConfig();
  std::string dir_;
};

TEST_F(CorruptionTest, IntactCheckpointVerifies) {
  EXPECT_TRUE(VerifyCheckpoint(dir_).ok());
  EXPECT_TRUE(LoadCheckpoint(dir_, &config_).ok());
  EXPECT_TRUE(LoadCheckpoint(dir_ + "/", nullptr).ok());
}

TEST_F(CorruptionTest, FlippedByteInModelIsASha256Mismatch) {
  const std::string model = dir_ + "/model.safetensors";
  testing::FlipByte(model, testing::FileSize(model) - 10);  // inside the tensor data
  ExpectLoadFails(StatusCode::kDataLoss,
                  {dir_ + ": model.safetensors: sha256 mismatch (file corrupt)"});
}

TEST_F(CorruptionTest, TruncatedOptimizerIsASizeMismatch) {
  const std::string optimizer = dir_ + "/optimizer.safetensors";
  const int64_t size = testing::FileSize(optimizer);
  testing::Truncate(optimizer, size / 2);
  ExpectLoadFails(StatusCode::kDataLoss,
                  {"step-00000123: optimizer.safetensors: size " + std::to_string(size / 2) +
                       " bytes, manifest says " + std::to_string(size),
                   "(file truncated or corrupt)"});
}

TEST_F(CorruptionTest, MissingManifestMeansIncomplete) {
  std::filesystem::remove(dir_ + "/manifest.json");
  ExpectLoadFails(StatusCode::kDataLoss,
                  {"step-00000123: manifest.json missing (checkpoint incomplete"});
}

TEST_F(CorruptionTest, MissingListedFileIsNamed) {
  std::filesystem::remove(dir_ + "/state.json");
  ExpectLoadFails(StatusCode::kDataLoss, {"step-00000123: state.json: missing"});
}

TEST_F(CorruptionTest, GarbledManifestIsDataLoss) {
  testing::WriteText(dir_ + "/manifest.json", "{\"format\": \"dyt-checkpoint\"");
  ExpectLoadFails(StatusCode::kDataLoss, {"step-00000123: manifest.json: not a JSON object"});
}

TEST_F(CorruptionTest, CheckpointOfAnotherModelConfigIsAFailedPreconditionNamingTheFields) {
  ModelConfig other = config_;
  other.dim = 32;
  other.n_layers = 3;
  ExpectLoadFails(StatusCode::kFailedPrecondition,
                  {"step-00000123: model config differs from the expected one",
                   "dim (checkpoint 16, expected 32)", "n_layers (checkpoint 2, expected 3)"},
                  &other);
  // Without an expectation the same checkpoint loads.
  EXPECT_TRUE(LoadCheckpoint(dir_, nullptr).ok());
}

TEST_F(CorruptionTest, UnknownFormatVersionIsAFailedPrecondition) {
  std::string manifest = testing::ReadText(dir_ + "/manifest.json");
  const std::string from = "\"format_version\": 1";
  ASSERT_NE(manifest.find(from), std::string::npos);
  manifest.replace(manifest.find(from), from.size(), "\"format_version\": 2");
  testing::WriteText(dir_ + "/manifest.json", manifest);
  ExpectLoadFails(StatusCode::kFailedPrecondition,
                  {"manifest.json: format_version 2 is not supported (this build reads version "
                   "1)"});
}

TEST_F(CorruptionTest, ACheckpointCopiedUnderAnotherStepNameIsRejected) {
  const std::string copy = store_.Join("step-00000200");
  testing::CopyDir(dir_, copy);
  dir_ = copy;
  ExpectLoadFails(StatusCode::kDataLoss,
                  {"step-00000200: directory name says step 200, state.json says step 123"});
}

TEST_F(CorruptionTest, MissingDirectoryIsNotFound) {
  dir_ = store_.Join("step-00000999");
  ExpectLoadFails(StatusCode::kNotFound, {"step-00000999: no such checkpoint directory"});
}

}  // namespace
}  // namespace dyt
