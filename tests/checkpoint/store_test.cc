// FindLatestGood: which checkpoint a restarted job resumes from, and what it reports skipping.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/checkpoint/test_util.h"
#include "trainer/checkpoint/attempt_fence.h"
#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/checkpoint_writer.h"
#include "trainer/checkpoint/retention.h"

namespace dyt {
namespace {

using testing::MakeState;
using testing::TempDir;
using testing::TinyConfig;

class StoreTest : public ::testing::Test {
 protected:
  void Save(int64_t step) {
    ASSERT_TRUE(SaveCheckpoint(store_.path(), MakeState(config_, step), layout_, nullptr).ok());
  }
  std::string Dir(int64_t step) const { return store_.Join(StepDirName(step)); }
  StatusOr<ResumePoint> Find() { return FindLatestGood(store_.path(), &config_); }
  static std::string Joined(const std::vector<std::string>& lines) {
    std::string all;
    for (const std::string& l : lines) all += l + "\n";
    return all;
  }

  TempDir store_;
  const ModelConfig config_ = TinyConfig();
  const ParamLayout layout_{config_};
};

TEST_F(StoreTest, NoCheckpointIsNotFound) {
  EXPECT_EQ(FindLatestGood(store_.Join("missing"), &config_).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Find().status().code(), StatusCode::kNotFound);
  // Temp directories and other entries are not checkpoints.
  std::filesystem::create_directory(store_.Join(".tmp-step-00000001-1"));
  testing::WriteText(store_.Join("notes.txt"), "x");
  EXPECT_EQ(Find().status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, ListsStepDirectoriesHighestFirst) {
  for (int64_t s : {2, 10, 1}) Save(s);
  auto dirs = ListCheckpoints(store_.path());
  ASSERT_TRUE(dirs.ok());
  ASSERT_EQ(dirs->size(), 3u);
  EXPECT_EQ((*dirs)[0].step, 10);
  EXPECT_EQ((*dirs)[0].path, Dir(10));
  EXPECT_EQ((*dirs)[2].name, "step-00000001");
  EXPECT_EQ(*ReadLatest(store_.path()), "step-00000001");  // the last one saved
}

TEST_F(StoreTest, ResumesFromLatestWithoutWarnings) {
  for (int64_t s : {1, 2, 3}) Save(s);
  auto p = Find();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->state.step, 3);
  EXPECT_EQ(p->dir, Dir(3));
  EXPECT_TRUE(p->warnings.empty()) << Joined(p->warnings);
}

TEST_F(StoreTest, FallsBackPastACorruptLatestAndSaysWhy) {
  for (int64_t s : {1, 2, 3}) Save(s);
  testing::FlipByte(Dir(3) + "/model.safetensors", 100);
  auto p = Find();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->state.step, 2);
  ASSERT_EQ(p->warnings.size(), 1u) << Joined(p->warnings);
  EXPECT_NE(p->warnings[0].find("skipped " + Dir(3) +
                                ": model.safetensors: sha256 mismatch (file corrupt)"),
            std::string::npos)
      << p->warnings[0];
}

TEST_F(StoreTest, FallsBackPastSeveralKindsOfDamage) {
  for (int64_t s : {1, 2, 3}) Save(s);
  testing::Truncate(Dir(3) + "/optimizer.safetensors", 100);
  std::filesystem::remove(Dir(2) + "/manifest.json");
  auto p = Find();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->state.step, 1);
  ASSERT_EQ(p->warnings.size(), 2u) << Joined(p->warnings);
  EXPECT_NE(p->warnings[0].find("step-00000003: optimizer.safetensors: size 100 bytes"),
            std::string::npos);
  EXPECT_NE(p->warnings[1].find("step-00000002: manifest.json missing"), std::string::npos);
}

TEST_F(StoreTest, NoIntactCheckpointIsDataLossListingEachProblem) {
  for (int64_t s : {1, 2}) Save(s);
  testing::FlipByte(Dir(1) + "/state.json", 5);
  std::filesystem::remove(Dir(2) + "/model.safetensors");
  auto p = Find();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(p.status().message().find("no intact checkpoint in " + store_.path()),
            std::string::npos);
  EXPECT_NE(p.status().message().find("step-00000002: model.safetensors: missing"),
            std::string::npos);
  EXPECT_NE(p.status().message().find("step-00000001: state.json: sha256 mismatch"),
            std::string::npos);
}

TEST_F(StoreTest, AnotherModelConfigStopsTheSearchInsteadOfFallingBack) {
  for (int64_t s : {1, 2}) Save(s);
  ModelConfig other = config_;
  other.vocab_size = 128;
  auto p = FindLatestGood(store_.path(), &other);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find(Dir(2) + ": model config differs"), std::string::npos)
      << p.status().message();
  EXPECT_NE(p.status().message().find("vocab_size (checkpoint 64, expected 128)"),
            std::string::npos);
}

// init_std and the DyT alpha inits only choose initial values; a resumed run takes its values
// from the checkpoint, so a config that changed them resumes.
TEST_F(StoreTest, InitOnlyFieldsMayDifferFromTheCheckpoint) {
  Save(1);
  ModelConfig other = config_;
  other.init_std = config_.init_std * 2;
  other.alpha0_attn = config_.alpha0_attn + 1;
  auto p = FindLatestGood(store_.path(), &other);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->state.step, 1);
}

TEST_F(StoreTest, MissingOrGarbledLatestFallsBackToTheHighestStep) {
  for (int64_t s : {1, 2}) Save(s);
  std::filesystem::remove(store_.Join("latest"));
  auto p = Find();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->state.step, 2);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("latest is missing"), std::string::npos) << p->warnings[0];

  testing::WriteText(store_.Join("latest"), "\x01garbage");
  p = Find();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->state.step, 2);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("does not hold a step directory name"), std::string::npos);

  testing::WriteText(store_.Join("latest"), "step-00000009\n");
  p = Find();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->state.step, 2);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("names step-00000009, which does not exist"), std::string::npos);
}

// A crash between the rename and the update of `latest` leaves a complete step directory
// newer than `latest`. `latest` is the commit point, so it wins; the newer one is reported.
TEST_F(StoreTest, LatestIsTheCommitPointNotTheHighestStep) {
  for (int64_t s : {1, 2}) Save(s);
  testing::WriteText(store_.Join("latest"), "step-00000001\n");
  auto p = Find();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->state.step, 1);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("ignored " + Dir(2) + ": newer than latest"), std::string::npos);
}

// A crash before the rename leaves a complete-looking .tmp- directory (manifest and all).
// It is never a candidate, and retention removes it once its writer is gone.
TEST_F(StoreTest, AnUnrenamedTempDirectoryIsNeverChosenAndIsCleanedUp) {
  for (int64_t s : {1, 2}) Save(s);
  TempDir other;
  ASSERT_TRUE(SaveCheckpoint(other.path(), MakeState(config_, 3), layout_, nullptr).ok());
  const std::string stale = ".tmp-step-00000003-" + std::to_string(testing::DeadPid());
  testing::CopyDir(other.Join("step-00000003"), store_.Join(stale));
  const std::string mine = TempName("step-00000004");  // a live writer: this process
  std::filesystem::create_directory(store_.Join(mine));

  auto p = Find();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->state.step, 2);
  EXPECT_TRUE(p->warnings.empty()) << Joined(p->warnings);

  RetentionReport report;
  ASSERT_TRUE(ApplyRetention(store_.path(), 5, 0, &report).ok());
  EXPECT_EQ(report.removed_temp, std::vector<std::string>{stale});
  EXPECT_TRUE(report.deleted.empty());
  EXPECT_FALSE(std::filesystem::exists(store_.Join(stale)));
  EXPECT_TRUE(std::filesystem::exists(store_.Join(mine)));
}

}  // namespace
}  // namespace dyt

namespace dyt {
namespace {

// The attempt claim (attempt_fence.h): it only grows, attempt 0 claims nothing, and a damaged
// claim is said so when read and replaced by the next claim.
TEST(AttemptFenceTest, TheHighestAttemptHoldsTheStore) {
  testing::TempDir dir;
  const std::string store = dir.Join("job-1");
  EXPECT_EQ(*StoreAttempt(store), 0);  // no store yet
  EXPECT_EQ(*ClaimStore(store, 0), 0);
  EXPECT_FALSE(std::filesystem::exists(store + "/attempt"));
  EXPECT_EQ(*ClaimStore(store, 2), 2);
  EXPECT_EQ(*StoreAttempt(store), 2);
  EXPECT_EQ(*ClaimStore(store, 1), 2);  // a stale attempt claims nothing
  EXPECT_EQ(*StoreAttempt(store), 2);
  EXPECT_EQ(*ClaimStore(store, 3), 3);
  EXPECT_EQ(testing::ReadText(store + "/attempt"), "3\n");
  testing::WriteText(store + "/attempt", "three\n");
  EXPECT_EQ(StoreAttempt(store).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(*ClaimStore(store, 4), 4);
  // The claim is no checkpoint: listing and resuming ignore it.
  EXPECT_TRUE(ListCheckpoints(store)->empty());
}

}  // namespace
}  // namespace dyt
