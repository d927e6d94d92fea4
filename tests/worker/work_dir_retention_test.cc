// PruneAttemptDirs: finished attempts' directories go once unchanged for the retention period;
// attempts still held, recent ones, and anything that is not an attempt directory stay.
#include "services/worker/work_dir_retention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "tests/common/temp_dir.h"

namespace dyt::worker {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;

// An attempt directory with a config and a rank log, everything last written at `when`.
void MakeAttempt(const fs::path& dir, fs::file_time_type when) {
  fs::create_directories(dir / "output");
  std::ofstream(dir / "config.yaml") << "model: {preset: test}\n";
  std::ofstream(dir / "rank-0.log") << "step 1/5 loss 10.4\n";
  for (const auto& e : fs::recursive_directory_iterator(dir)) fs::last_write_time(e.path(), when);
  fs::last_write_time(dir, when);
}

bool Has(const std::vector<std::string>& v, const fs::path& p) {
  return std::find(v.begin(), v.end(), p.string()) != v.end();
}

TEST(WorkDirRetentionTest, OnlyFinishedAttemptsUnchangedForTheRetentionPeriodGo) {
  testing::TempDir dir;
  const fs::path jobs = fs::path(dir.path()) / "jobs";
  const auto now = fs::file_time_type::clock::now();
  const auto old = now - hours(24 * 20);
  MakeAttempt(jobs / "job-1" / "attempt-1", old);  // finished long ago: goes
  MakeAttempt(jobs / "job-1" / "attempt-2", old);  // still held here: stays
  MakeAttempt(jobs / "job-2" / "attempt-1", old);
  fs::last_write_time(jobs / "job-2" / "attempt-1" / "rank-0.log",
                      now - hours(1));             // written lately
  MakeAttempt(jobs / "job-3" / "attempt-4", old);  // goes, and its job dir with it
  MakeAttempt(jobs / "job-4" / "attempt-x", old);  // not an attempt directory
  std::ofstream(jobs / "job-4" / "notes.txt") << "an operator's file\n";

  PruneReport report =
      PruneAttemptDirs(dir.path(), {"job-1/attempt-2"}, std::chrono::hours(24 * 14), now);
  EXPECT_TRUE(report.errors.empty()) << ::testing::PrintToString(report.errors);
  EXPECT_EQ(report.deleted.size(), 3u) << ::testing::PrintToString(report.deleted);
  EXPECT_TRUE(Has(report.deleted, jobs / "job-1" / "attempt-1"));
  EXPECT_TRUE(Has(report.deleted, jobs / "job-3" / "attempt-4"));
  EXPECT_TRUE(Has(report.deleted, jobs / "job-3"));
  EXPECT_FALSE(fs::exists(jobs / "job-1" / "attempt-1"));
  EXPECT_TRUE(fs::exists(jobs / "job-1" / "attempt-2" / "rank-0.log"));
  EXPECT_TRUE(fs::exists(jobs / "job-2" / "attempt-1" / "config.yaml"));
  EXPECT_FALSE(fs::exists(jobs / "job-3"));
  EXPECT_TRUE(fs::exists(jobs / "job-4" / "attempt-x"));
  EXPECT_TRUE(fs::exists(jobs / "job-4" / "notes.txt"));

  // With a shorter period the lately written one goes too; nothing else changes.
  report = PruneAttemptDirs(dir.path(), {"job-1/attempt-2"}, std::chrono::minutes(30), now);
  EXPECT_EQ(report.deleted.size(), 2u) << ::testing::PrintToString(report.deleted);
  EXPECT_FALSE(fs::exists(jobs / "job-2"));
  EXPECT_TRUE(fs::exists(jobs / "job-1" / "attempt-2"));
}

TEST(WorkDirRetentionTest, AWorkDirWithoutJobsIsNothingToDo) {
  testing::TempDir dir;
  PruneReport report = PruneAttemptDirs(dir.Join("never-used"), {}, std::chrono::hours(1));
  EXPECT_TRUE(report.deleted.empty());
  EXPECT_TRUE(report.errors.empty());
}

}  // namespace
}  // namespace dyt::worker
