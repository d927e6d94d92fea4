// Retention: keep the newest N, every K-th step, `latest` and the newest intact checkpoint.
#include "trainer/checkpoint/retention.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/checkpoint/test_util.h"
#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/checkpoint_writer.h"

namespace dyt {
namespace {

using testing::MakeState;
using testing::TempDir;
using testing::TinyConfig;

class RetentionTest : public ::testing::Test {
 protected:
  void Save(int64_t step) {
    ASSERT_TRUE(SaveCheckpoint(store_.path(), MakeState(config_, step), layout_, nullptr).ok());
  }
  std::string Dir(int64_t step) const { return store_.Join(StepDirName(step)); }
  std::vector<int64_t> Steps() const {
    std::vector<int64_t> steps;
    auto dirs = ListCheckpoints(store_.path());
    EXPECT_TRUE(dirs.ok());
    if (!dirs.ok()) return steps;
    for (const CheckpointDir& d : *dirs) steps.push_back(d.step);
    return steps;
  }
  // Every entry of the store, sorted: nothing half-deleted may remain.
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(store_.path())) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir store_;
  const ModelConfig config_ = TinyConfig();
  const ParamLayout layout_{config_};
};

TEST_F(RetentionTest, KeepsTheLastNAndEveryKthStep) {
  for (int64_t s = 10; s <= 100; s += 10) Save(s);
  RetentionReport report;
  ASSERT_TRUE(ApplyRetention(store_.path(), 3, 50, &report).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{100, 90, 80, 50}));
  EXPECT_EQ(report.deleted.size(), 6u);
  EXPECT_TRUE(report.warnings.empty());
  EXPECT_EQ(Entries(), (std::vector<std::string>{"latest", "step-00000050", "step-00000080",
                                                 "step-00000090", "step-00000100"}));
  // Idempotent.
  ASSERT_TRUE(ApplyRetention(store_.path(), 3, 50, &report).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{100, 90, 80, 50}));
}

TEST_F(RetentionTest, KZeroKeepsOnlyTheLastN) {
  for (int64_t s = 1; s <= 5; ++s) Save(s);
  ASSERT_TRUE(ApplyRetention(store_.path(), 2, 0).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{5, 4}));
}

TEST_F(RetentionTest, NeverDeletesTheNewestIntactCheckpoint) {
  for (int64_t s = 1; s <= 5; ++s) Save(s);
  testing::FlipByte(Dir(5) + "/model.safetensors", 200);
  testing::Truncate(Dir(4) + "/optimizer.safetensors", 64);
  RetentionReport report;
  ASSERT_TRUE(ApplyRetention(store_.path(), 2, 0, &report).ok());
  // 5 and 4 are the newest two (damaged, kept for a person to look at); 3 is the newest
  // intact one, which a resume needs.
  EXPECT_EQ(Steps(), (std::vector<int64_t>{5, 4, 3}));
  ASSERT_EQ(report.warnings.size(), 2u);
  EXPECT_NE(report.warnings[0].find("step-00000005: model.safetensors: sha256 mismatch"),
            std::string::npos);
  auto p = FindLatestGood(store_.path(), &config_);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->state.step, 3);
}

TEST_F(RetentionTest, NeverDeletesWhatLatestNames) {
  for (int64_t s = 1; s <= 5; ++s) Save(s);
  testing::WriteText(store_.Join("latest"), "step-00000002\n");
  ASSERT_TRUE(ApplyRetention(store_.path(), 1, 0).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{5, 2}));
}

TEST_F(RetentionTest, NZeroStillKeepsTheNewestIntactOne) {
  for (int64_t s = 1; s <= 3; ++s) Save(s);
  std::filesystem::remove(store_.Join("latest"));
  ASSERT_TRUE(ApplyRetention(store_.path(), 0, 0).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{3}));
}

TEST_F(RetentionTest, DeletesNothingWhenNoCheckpointIsIntact) {
  for (int64_t s = 1; s <= 3; ++s) {
    Save(s);
    std::filesystem::remove(Dir(s) + "/manifest.json");
  }
  RetentionReport report;
  ASSERT_TRUE(ApplyRetention(store_.path(), 1, 0, &report).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{3, 2, 1}));
  ASSERT_FALSE(report.warnings.empty());
  EXPECT_NE(report.warnings.back().find("verifies; deleting nothing"), std::string::npos);
}

TEST_F(RetentionTest, RemovesStaleTempEntriesOfDeadWritersOnly) {
  Save(1);
  const std::string dead = std::to_string(testing::DeadPid());
  const std::string stale_dir = ".tmp-step-00000002-" + dead;
  const std::string stale_old = ".old-step-00000001-" + dead;
  const std::string stale_file = ".tmp-latest-" + dead;
  std::filesystem::create_directory(store_.Join(stale_dir));
  testing::WriteText(store_.Join(stale_dir) + "/model.safetensors", "partial");
  std::filesystem::create_directory(store_.Join(stale_old));
  testing::WriteText(store_.Join(stale_file), "step-00000002\n");
  const std::string live = TempName("step-00000003");
  std::filesystem::create_directory(store_.Join(live));
  testing::WriteText(store_.Join("notes.txt"), "not ours");
  std::filesystem::create_directory(store_.Join(".tmp-no-pid"));

  RetentionReport report;
  ASSERT_TRUE(ApplyRetention(store_.path(), 1, 0, &report).ok());
  std::sort(report.removed_temp.begin(), report.removed_temp.end());
  std::vector<std::string> want = {stale_old, stale_file, stale_dir};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(report.removed_temp, want);
  std::vector<std::string> left = {".tmp-no-pid", live, "latest", "notes.txt", "step-00000001"};
  std::sort(left.begin(), left.end());
  EXPECT_EQ(Entries(), left);
}

TEST_F(RetentionTest, RejectsNegativeSettings) {
  EXPECT_EQ(ApplyRetention(store_.path(), -1, 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyRetention(store_.path(), 1, -5).code(), StatusCode::kInvalidArgument);
}

TEST_F(RetentionTest, AMissingStoreIsNothingToDo) {
  RetentionReport report;
  EXPECT_TRUE(ApplyRetention(store_.Join("nope"), 1, 0, &report).ok());
  EXPECT_TRUE(report.deleted.empty());
}

}  // namespace
}  // namespace dyt
