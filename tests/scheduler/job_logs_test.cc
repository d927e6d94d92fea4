// JobLogs' ring and LogsNotice: what a GetJobLogs reader is told when the scheduler no longer
// has lines the job printed, and that nothing is said when it has them all.
#include "scheduler/job_logs.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dyt {
namespace {

using google::protobuf::util::TimeUtil;

std::vector<std::string> Numbered(int from, int to) {
  std::vector<std::string> lines;
  for (int i = from; i < to; ++i) lines.push_back("line " + std::to_string(i));
  return lines;
}

// A job that ran (a RUNNING event at `ran_at`): attempt 1 on w1, attempt 2 on w1 and w2.
v1::Job Ran(const std::string& id, google::protobuf::Timestamp ran_at,
            v1::JobState state = v1::RUNNING) {
  v1::Job job;
  job.set_id(id);
  job.set_state(state);
  v1::JobEvent* queued = job.add_events();
  queued->set_state(v1::QUEUED);
  *queued->mutable_time() = ran_at;
  v1::JobEvent* running = job.add_events();
  running->set_state(v1::RUNNING);
  *running->mutable_time() = ran_at;
  v1::AttemptWorkers* first = job.add_attempt_workers();
  first->set_attempt(1);
  first->add_worker_ids("w1");
  v1::AttemptWorkers* second = job.add_attempt_workers();
  second->set_attempt(2);
  second->add_worker_ids("w1");
  second->add_worker_ids("w2");
  // Only the running attempt has a placement; the notice names the workers of every attempt.
  if (state == v1::RUNNING) job.add_placement()->set_worker_id("w2");
  return job;
}

constexpr const char* kWhere =
    "the workers keep every line in <work-dir>/jobs/job-1/attempt-<n>/rank-<r>.log (attempt 1 "
    "on w1; attempt 2 on w1, w2)";

TEST(JobLogsTest, LinesTheRingDroppedAreCountedAndPointedTo) {
  JobLogs logs(/*max_lines_per_job=*/5, /*max_jobs=*/10);
  logs.Append("job-1", 1, 0, Numbered(0, 8));
  const v1::Job job = Ran("job-1", TimeUtil::GetCurrentTime());
  // A tail the ring holds whole: nothing missing.
  JobLogs::Tail three = logs.Last("job-1", 3);
  ASSERT_EQ(three.lines.size(), 3u);
  EXPECT_EQ(three.lines[0].text(), "line 5");
  EXPECT_EQ(three.dropped, 0u);
  EXPECT_EQ(LogsNotice(logs, job, three, 3), "");
  // Reaching back past the oldest line kept: 3 are gone.
  JobLogs::Tail all = logs.Last("job-1", 100);
  ASSERT_EQ(all.lines.size(), 5u);
  EXPECT_EQ(all.lines[0].text(), "line 3");
  EXPECT_EQ(all.dropped, 3u);
  EXPECT_EQ(LogsNotice(logs, job, all, 100),
            std::string("3 earlier lines are gone from the scheduler, which keeps the last 5 of a "
                        "job (at most 8192 KiB); ") +
                kWhere);
}

// What one job holds is bounded in bytes too, and a line over kMaxLineBytes is cut, saying so:
// a worker sending 3 MiB lines cannot make the scheduler (or a GetJobLogs answer) huge.
TEST(JobLogsTest, LongLinesAreCutAndAJobKeepsAtMostItsByteBudget) {
  JobLogs logs(/*max_lines_per_job=*/1000, /*max_jobs=*/10, /*max_bytes_per_job=*/200 * 1024);
  const std::string huge(3 << 20, 'x');
  logs.Append("job-1", 1, 0, {"first", huge, huge, huge, huge, "last"});
  JobLogs::Tail all = logs.Last("job-1", 1000);
  ASSERT_EQ(all.lines.size(), 4u);  // 3 cut lines of 64 KiB + "last" fit in 200 KiB; 4 do not
  EXPECT_EQ(all.dropped, 2u);
  EXPECT_EQ(all.lines.back().text(), "last");
  const std::string cut = all.lines[0].text();
  EXPECT_EQ(cut.substr(0, JobLogs::kMaxLineBytes), huge.substr(0, JobLogs::kMaxLineBytes));
  EXPECT_EQ(cut.substr(JobLogs::kMaxLineBytes),
            " [" + std::to_string(huge.size() - JobLogs::kMaxLineBytes) +
                " more bytes of this line cut by the scheduler]");
  // A line at the limit is kept whole.
  logs.Append("job-2", 1, 0, {std::string(JobLogs::kMaxLineBytes, 'y')});
  EXPECT_EQ(logs.Last("job-2", 1).lines[0].text().size(), JobLogs::kMaxLineBytes);
}

TEST(JobLogsTest, AJobThatRanBeforeTheSchedulerStartedIsMissingItsEarlyLines) {
  JobLogs logs;
  logs.Append("job-1", 2, 0, Numbered(0, 2));
  const v1::Job job = Ran("job-1", TimeUtil::SecondsToTimestamp(1700000000));
  JobLogs::Tail got = logs.Last("job-1", 100);
  const std::string notice = LogsNotice(logs, job, got, 100);
  EXPECT_EQ(notice.rfind("output from before the scheduler started (20", 0), 0u) << notice;
  EXPECT_NE(notice.find("Z) is not kept by it; " + std::string(kWhere)), std::string::npos)
      << notice;
  // A reader who asked for no more than it got misses nothing.
  EXPECT_EQ(LogsNotice(logs, job, logs.Last("job-1", 2), 2), "");
  // A job recovered at the scheduler's start, though its events' one-second times are those of
  // the start itself (a quick restart).
  logs.Append("job-2", 1, 0, Numbered(0, 2));
  const v1::Job quick = Ran("job-2", TimeUtil::GetCurrentTime());
  EXPECT_EQ(LogsNotice(logs, quick, logs.Last("job-2", 100), 100), "");
  logs.MarkRanBeforeStart("job-2");
  EXPECT_EQ(LogsNotice(logs, quick, logs.Last("job-2", 100), 100)
                .rfind("output from before the scheduler started (", 0),
            0u);
}

TEST(JobLogsTest, AFinishedJobsEvictedLinesArePointedTo) {
  JobLogs logs(/*max_lines_per_job=*/100, /*max_jobs=*/1);
  logs.Append("job-1", 1, 0, Numbered(0, 3));
  logs.Finish("job-1");
  logs.Append("job-2", 1, 0, Numbered(0, 3));
  logs.Finish("job-2");
  EXPECT_FALSE(logs.Has("job-1"));
  const v1::Job job = Ran("job-1", TimeUtil::GetCurrentTime(), v1::SUCCEEDED);
  EXPECT_EQ(LogsNotice(logs, job, logs.Last("job-1", 100), 100),
            std::string("the scheduler no longer keeps this job's output (it keeps that of the "
                        "last 1 jobs); ") +
                kWhere);
}

TEST(JobLogsTest, TheNoticeNamesTheWorkersOfTheLastFiveAttempts) {
  JobLogs logs(/*max_lines_per_job=*/100, /*max_jobs=*/1);
  logs.Append("job-1", 7, 0, Numbered(0, 3));
  logs.Finish("job-1");
  logs.Append("job-2", 1, 0, Numbered(0, 3));
  logs.Finish("job-2");
  v1::Job job = Ran("job-1", TimeUtil::GetCurrentTime(), v1::FAILED);
  job.clear_attempt_workers();
  for (int attempt = 1; attempt <= 7; ++attempt) {
    v1::AttemptWorkers* a = job.add_attempt_workers();
    a->set_attempt(attempt);
    // Not "w" + std::to_string(...): GCC 12 warns falsely of it (-Wrestrict).
    a->add_worker_ids(std::string("w") + std::to_string(attempt));
  }
  EXPECT_EQ(LogsNotice(logs, job, logs.Last("job-1", 100), 100),
            "the scheduler no longer keeps this job's output (it keeps that of the last 1 jobs); "
            "the workers keep every line in <work-dir>/jobs/job-1/attempt-<n>/rank-<r>.log "
            "(attempt 3 on w3; attempt 4 on w4; attempt 5 on w5; attempt 6 on w6; attempt 7 on "
            "w7)");
}

TEST(JobLogsTest, AJobThatNeverRanHasNothingMissing) {
  JobLogs logs;
  v1::Job queued;
  queued.set_id("job-1");
  queued.add_events()->set_state(v1::QUEUED);
  EXPECT_EQ(LogsNotice(logs, queued, logs.Last("job-1", 100), 100), "");
  // Nor does a running job whose every line is here.
  logs.Append("job-1", 1, 0, Numbered(0, 4));
  EXPECT_EQ(
      LogsNotice(logs, Ran("job-1", TimeUtil::GetCurrentTime()), logs.Last("job-1", 100), 100), "");
}

TEST(JobLogsTest, NumberedBatchesNumberTheirLines) {
  JobLogs logs;
  logs.Append("job-1", 1, 0, {"a", "a"}, /*first_line=*/7);
  logs.Append("job-1", 1, 1, {"b"});  // not numbered (an older worker)
  JobLogs::Tail got = logs.Last("job-1", 10);
  ASSERT_EQ(got.lines.size(), 3u);
  EXPECT_EQ(got.lines[0].line(), 7);
  EXPECT_EQ(got.lines[1].line(), 8);
  EXPECT_EQ(got.lines[2].line(), 0);
}

}  // namespace
}  // namespace dyt
