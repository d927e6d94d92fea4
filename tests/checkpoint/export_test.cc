// dyt-export, end to end: the real binary on a saved checkpoint, its output read back by an
// independent reader (read_safetensors.py: python3 + numpy, no dyt code).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/checkpoint/test_util.h"
#include "trainer/checkpoint/bf16.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_writer.h"

namespace dyt {
namespace {

using testing::MakeState;
using testing::TempDir;
using testing::TinyConfig;

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Round-to-nearest-even to bfloat16, stated differently from Bf16FromFloat: pick the closer of
// the two bf16 values around x (measured in double), the even one on a tie.
float NearestEvenBf16(float x) {
  const uint32_t b = Bits(x);
  const float lo = FromBits(b & 0xffff0000u);
  const float hi = FromBits((b & 0xffff0000u) + 0x10000u);
  const double dlo = std::fabs(double(x) - double(lo));
  const double dhi = std::fabs(double(hi) - double(x));
  if (dlo != dhi) return dlo < dhi ? lo : hi;
  return ((b >> 16) & 1u) == 0 ? lo : hi;
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(Bf16FromFloat(1.0f), 0x3f80);
  EXPECT_EQ(Bf16FromFloat(FromBits(0x3f808000u)), 0x3f80);  // tie, down to even
  EXPECT_EQ(Bf16FromFloat(FromBits(0x3f818000u)), 0x3f82);  // tie, up to even
  EXPECT_EQ(Bf16FromFloat(FromBits(0x3f808001u)), 0x3f81);  // above half
  EXPECT_EQ(Bf16FromFloat(FromBits(0x3f807fffu)), 0x3f80);  // below half
  EXPECT_EQ(Bf16FromFloat(-0.0f), 0x8000);
  EXPECT_EQ(Bf16FromFloat(INFINITY), 0x7f80);
  EXPECT_EQ(Bf16FromFloat(-INFINITY), 0xff80);
  EXPECT_EQ(Bf16FromFloat(3.4028235e38f), 0x7f80);  // FLT_MAX rounds up to infinity
  EXPECT_TRUE(std::isnan(FloatFromBf16(Bf16FromFloat(NAN))));
  EXPECT_TRUE(std::isnan(FloatFromBf16(Bf16FromFloat(FromBits(0x7f800001u)))));  // low payload
  EXPECT_EQ(Bf16FromFloat(FromBits(0xff800001u)) & 0x8000, 0x8000);  // NaN keeps its sign
  for (uint32_t b = 0; b < 0x7f000000u; b += 0x00012345u) {
    const float x = FromBits(b);
    ASSERT_EQ(FloatFromBf16(Bf16FromFloat(x)), NearestEvenBf16(x)) << std::hex << b;
    ASSERT_EQ(FloatFromBf16(Bf16FromFloat(-x)), NearestEvenBf16(-x)) << std::hex << b;
  }
}

class ExportTest : public ::testing::Test {
 protected:
  // Runs dyt-export with `args`; returns its exit code, output in log_.
  int RunExport(const std::string& args) {
    const std::string log = work_.Join("export.log");
    const std::string cmd = std::string(DYT_EXPORT_BINARY) + " " + args + " >'" + log + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    log_ = testing::ReadText(log);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  // Reads out/model.safetensors with the independent reader.
  nlohmann::json ReadWithPython(const std::string& model) {
    const std::string json_path = work_.Join("tensors.json");
    const std::string cmd = std::string(DYT_REFERENCE_PYTHON) + " " + DYT_CHECKPOINT_TEST_DIR +
                            "/read_safetensors.py '" + model + "' '" + json_path + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return nlohmann::json::parse(testing::ReadText(json_path));
  }
  void SetUp() override {
    ASSERT_FALSE(std::string(DYT_REFERENCE_PYTHON).empty())
        << "python3 not found: scripts/setup.sh installs it (with numpy)";
  }

  TempDir work_;
  const ModelConfig config_ = TinyConfig();
  const ParamLayout layout_{config_};
  std::string log_;
};

TEST_F(ExportTest, F32ExportHoldsExactlyTheCheckpointsParameters) {
  const CheckpointState state = MakeState(config_, 9);
  SaveResult saved;
  ASSERT_TRUE(SaveCheckpoint(work_.Join("store"), state, layout_, &saved).ok());
  const std::string out = work_.Join("out");
  ASSERT_EQ(RunExport("--checkpoint '" + saved.dir + "' --output '" + out + "'"), 0) << log_;

  const nlohmann::json read = ReadWithPython(out + "/model.safetensors");
  EXPECT_EQ(read["metadata"]["format"], "pt");
  ASSERT_EQ(read["tensors"].size(), layout_.tensors().size());
  for (const auto& t : read["tensors"]) {
    const std::string name = t["name"];
    const ParamTensor* want = layout_.Find(name);
    ASSERT_NE(want, nullptr) << name;
    EXPECT_EQ(t["dtype"], "F32");
    EXPECT_EQ(t["shape"].get<std::vector<int64_t>>(), want->shape) << name;
    const auto values = t["values"].get<std::vector<double>>();
    ASSERT_EQ(int64_t(values.size()), want->numel);
    for (int64_t i = 0; i < want->numel; ++i) {
      ASSERT_TRUE(
          testing::SameBits(float(values[size_t(i)]), state.params[size_t(want->offset + i)]))
          << name << "[" << i << "]";
    }
  }

  const auto config = nlohmann::json::parse(testing::ReadText(out + "/config.json"));
  EXPECT_EQ(config["model_type"], "llama-dyt");
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_EQ(config["dim"], config_.dim);
  EXPECT_EQ(config["n_kv_heads"], config_.n_kv_heads);
  EXPECT_EQ(config["ffn_dim"], config_.ffn_dim);
  EXPECT_EQ(config["norm"], "dyt");
  EXPECT_EQ(config["architecture"]["normalization"]["formula"],
            "y = weight * tanh(alpha * x) + bias");
  EXPECT_NE(config["architecture"]["rope"]["convention"].get<std::string>().find(
                "interleaved pairs, as in Meta LLaMA"),
            std::string::npos);
  ASSERT_EQ(config["tensors"].size(), layout_.tensors().size());
  EXPECT_EQ(config["tensors"][0]["name"], "tok_embeddings.weight");
  EXPECT_EQ(config["source"]["step"], 9);
}

TEST_F(ExportTest, Bf16ExportFromAStoreRoundsEachValueToNearestEven) {
  const std::string store = work_.Join("store");
  for (int64_t s : {1, 2}) {
    ASSERT_TRUE(SaveCheckpoint(store, MakeState(config_, s), layout_, nullptr).ok());
  }
  testing::FlipByte(store + "/step-00000002/model.safetensors", 300);  // latest is damaged
  const std::string out = work_.Join("out");
  ASSERT_EQ(RunExport("--store '" + store + "' --output '" + out + "' --dtype bf16"), 0) << log_;
  EXPECT_NE(log_.find("skipped"), std::string::npos) << log_;
  EXPECT_NE(log_.find("step-00000002: model.safetensors: sha256 mismatch"), std::string::npos);

  const CheckpointState want = MakeState(config_, 1);
  const nlohmann::json read = ReadWithPython(out + "/model.safetensors");
  ASSERT_EQ(read["tensors"].size(), layout_.tensors().size());
  int ties = 0;
  for (const auto& t : read["tensors"]) {
    const ParamTensor* p = layout_.Find(t["name"]);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(t["dtype"], "BF16");
    EXPECT_EQ(t["shape"].get<std::vector<int64_t>>(), p->shape);
    const auto values = t["values"].get<std::vector<double>>();
    ASSERT_EQ(int64_t(values.size()), p->numel);
    for (int64_t i = 0; i < p->numel; ++i) {
      const float x = want.params[size_t(p->offset + i)];
      const float y = float(values[size_t(i)]);
      ASSERT_EQ(Bits(y), Bits(NearestEvenBf16(x))) << p->name << "[" << i << "] " << x;
      if (std::isnormal(x)) {
        ASSERT_LE(std::fabs(double(y) - x), std::ldexp(std::fabs(x), -8));
      }
      ties += (Bits(x) & 0xffffu) == 0x8000u;
    }
  }
  EXPECT_GE(ties, 3);  // MakeState plants ties; make sure they were exercised
  const auto config = nlohmann::json::parse(testing::ReadText(out + "/config.json"));
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  EXPECT_EQ(config["source"]["step"], 1);
}

TEST_F(ExportTest, RefusesDamagedCheckpointsAndBadArguments) {
  const std::string store = work_.Join("store");
  SaveResult saved;
  ASSERT_TRUE(SaveCheckpoint(store, MakeState(config_, 4), layout_, &saved).ok());
  testing::Truncate(saved.dir + "/model.safetensors", 50);
  const std::string out = work_.Join("out");
  EXPECT_EQ(RunExport("--checkpoint '" + saved.dir + "' --output '" + out + "'"), 1);
  EXPECT_NE(log_.find("step-00000004: model.safetensors: size 50 bytes"), std::string::npos)
      << log_;
  EXPECT_FALSE(std::filesystem::exists(out + "/model.safetensors"));
  EXPECT_EQ(RunExport("--store '" + store + "' --output '" + out + "'"), 1);
  EXPECT_NE(log_.find("no intact checkpoint"), std::string::npos) << log_;

  EXPECT_EQ(RunExport("--store '" + store + "' --output '" + out + "' --dtype f16"), 2) << log_;
  EXPECT_EQ(RunExport("--output '" + out + "'"), 2) << log_;
  EXPECT_EQ(RunExport("--store a --checkpoint b --output '" + out + "'"), 2) << log_;
}

// The weights are what an export needs: a damaged optimizer.safetensors (which a resume
// refuses) does not keep an intact model from being exported (salvage), and the model file
// itself is still checked.
TEST_F(ExportTest, AnIntactModelIsExportedDespiteADamagedOptimizerFile) {
  const std::string store = work_.Join("store");
  SaveResult saved;
  const CheckpointState state = MakeState(config_, 4);
  ASSERT_TRUE(SaveCheckpoint(store, state, layout_, &saved).ok());
  testing::FlipByte(saved.dir + "/optimizer.safetensors", 100);
  EXPECT_EQ(LoadCheckpoint(saved.dir, nullptr).status().code(), StatusCode::kDataLoss);
  auto weights = LoadCheckpoint(saved.dir, nullptr, CheckpointUse::kWeights);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  EXPECT_EQ(weights->params, state.params);
  const std::string out = work_.Join("out");
  ASSERT_EQ(RunExport("--checkpoint '" + saved.dir + "' --output '" + out + "'"), 0) << log_;
  EXPECT_TRUE(std::filesystem::exists(out + "/model.safetensors"));
  testing::FlipByte(saved.dir + "/model.safetensors", 100);
  EXPECT_EQ(RunExport("--checkpoint '" + saved.dir + "' --output '" + work_.Join("out2") + "'"), 1);
  EXPECT_NE(log_.find("model.safetensors: sha256 mismatch"), std::string::npos) << log_;
}

// An --output that would overwrite a checkpoint's files (the export's model.safetensors in place
// of the checkpoint's own, which a resume then finds damaged) is refused, the checkpoint kept.
TEST_F(ExportTest, RefusesToWriteIntoACheckpoint) {
  const std::string store = work_.Join("store");
  SaveResult saved;
  ASSERT_TRUE(SaveCheckpoint(store, MakeState(config_, 4), layout_, &saved).ok());
  ASSERT_TRUE(SaveCheckpoint(store, MakeState(config_, 8), layout_, &saved).ok());
  const std::string older = store + "/step-00000004";
  const std::pair<std::string, std::string> cases[] = {
      {"--checkpoint '" + saved.dir + "' --output '" + saved.dir + "'",
       "is the checkpoint directory"},
      {"--checkpoint '" + saved.dir + "/' --output '" + store + "/./step-00000008/sub'",
       "is inside the checkpoint directory"},
      {"--store '" + store + "' --output '" + saved.dir + "'", "holds a checkpoint"},
      {"--checkpoint '" + saved.dir + "' --output '" + older + "'", "holds a checkpoint"},
      {"--checkpoint '" + saved.dir + "' --output ''", "--output: must name a directory"},
      {"--store '" + store + "' --output '" + saved.dir + "/sub'",
       "is inside the checkpoint directory"},
  };
  for (const auto& [args, says] : cases) {
    EXPECT_EQ(RunExport(args), 2) << args << "\n" << log_;
    EXPECT_NE(log_.find(says), std::string::npos) << args << "\n" << log_;
  }
  for (const std::string& dir : {saved.dir, older}) {
    EXPECT_TRUE(VerifyCheckpoint(dir).ok()) << VerifyCheckpoint(dir).ToString();
  }
  EXPECT_FALSE(std::filesystem::exists(saved.dir + "/config.json"));
  EXPECT_FALSE(std::filesystem::exists(saved.dir + "/sub"));
}

}  // namespace
}  // namespace dyt
