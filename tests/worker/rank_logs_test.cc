// RankLogs: one file per rank under the attempt dir, appended line by line, capped in size.
#include "services/worker/rank_logs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/common/temp_dir.h"

namespace dyt::worker {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(RankLogsTest, EachRankHasItsFileOfWholeLinesReadableAsTheyCome) {
  testing::TempDir dir;
  RankLogs logs(dir.path());
  EXPECT_TRUE(logs.Append(0, "step 1 loss 10.4"));
  EXPECT_TRUE(logs.Append(2, "[rank 2] ready"));
  EXPECT_TRUE(logs.Append(0, ""));
  // Flushed per line: a reader sees the lines while the writer still holds the file.
  EXPECT_EQ(Read(RankLogs::PathOf(dir.path(), 0)), "step 1 loss 10.4\n\n");
  EXPECT_EQ(Read(RankLogs::PathOf(dir.path(), 2)), "[rank 2] ready\n");
  EXPECT_FALSE(std::filesystem::exists(RankLogs::PathOf(dir.path(), 1)));
  // A rank that has printed nothing yet still has its (empty) file once opened at its start.
  EXPECT_TRUE(logs.Open(1));
  EXPECT_EQ(Read(RankLogs::PathOf(dir.path(), 1)), "");
  EXPECT_TRUE(logs.Open(0));  // already open: what it holds stays
  EXPECT_EQ(Read(RankLogs::PathOf(dir.path(), 0)), "step 1 loss 10.4\n\n");
}

TEST(RankLogsTest, AWorkerRestartedOnTheSameAttemptAppends) {
  testing::TempDir dir;
  {
    RankLogs first(dir.path());
    ASSERT_TRUE(first.Append(0, "before"));
  }
  RankLogs second(dir.path());
  ASSERT_TRUE(second.Append(0, "after"));
  EXPECT_EQ(Read(RankLogs::PathOf(dir.path(), 0)), "before\nafter\n");
}

TEST(RankLogsTest, AFullFileStopsWithALineSayingSo) {
  testing::TempDir dir;
  RankLogs logs(dir.path(), /*max_bytes=*/20);
  EXPECT_TRUE(logs.Append(0, "0123456789"));   // 11 bytes
  EXPECT_FALSE(logs.Append(0, "0123456789"));  // would be 22
  EXPECT_FALSE(logs.Append(0, "x"));           // closed for good
  EXPECT_EQ(Read(RankLogs::PathOf(dir.path(), 0)),
            "0123456789\n[dyt-worker: output beyond 20 bytes is not kept in this file]\n");
  EXPECT_TRUE(logs.Append(1, "rank 1 too"));  // each rank has its own budget
}

TEST(RankLogsTest, AnUnwritableDirectoryLosesNothingElse) {
  testing::TempDir dir;
  RankLogs logs(dir.Join("missing/dir"));
  EXPECT_FALSE(logs.Append(0, "line"));
  EXPECT_FALSE(logs.Append(0, "line"));  // not retried per line
}

}  // namespace
}  // namespace dyt::worker
