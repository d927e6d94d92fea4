#include "services/worker/outbox.h"

#include <gtest/gtest.h>

#include <thread>

namespace dyt::worker {
namespace {

TEST(OutboxTest, LogLinesAreBatchedAndGoOutBeforeALaterUpdate) {
  Outbox box;
  box.AddLogLine("j", 1, 0, "a");
  box.AddLogLine("j", 1, 0, "b");
  box.AddLogLine("j", 1, 1, "c");
  EXPECT_TRUE(box.Take().empty());  // not due yet
  v1::WorkerMessage exited;
  exited.mutable_update()->set_rank(0);
  box.Push(exited);
  auto out = box.Take();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].has_logs());
  EXPECT_TRUE(out[1].has_logs());
  EXPECT_TRUE(out[2].has_update());
  int lines = out[0].logs().lines_size() + out[1].logs().lines_size();
  EXPECT_EQ(lines, 3);
  EXPECT_TRUE(box.empty());
}

TEST(OutboxTest, ABatchIsDueAfterItsDelayOrAtItsSize) {
  Outbox box;
  for (size_t i = 0; i < Outbox::kBatchLines; ++i) box.AddLogLine("j", 1, 0, std::to_string(i));
  auto full = box.Take();
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(full[0].logs().lines_size(), static_cast<int>(Outbox::kBatchLines));
  box.AddLogLine("j", 1, 0, "late");
  const auto start = std::chrono::steady_clock::now();
  std::vector<v1::WorkerMessage> out;
  while (out.empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    box.Wait(std::chrono::milliseconds(50));
    out = box.Take();
  }
  ASSERT_EQ(out.size(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - start, Outbox::kBatchDelay / 2);
}

TEST(OutboxTest, RequeuedMessagesComeFirstAndLogsOverTheLimitAreDropped) {
  Outbox box(/*max_log_lines=*/2);
  box.AddLogLine("j", 1, 0, "1");
  box.AddLogLine("j", 1, 0, "2");
  box.AddLogLine("j", 1, 0, "3");
  EXPECT_EQ(box.dropped_log_lines(), 1u);
  v1::WorkerMessage u;
  u.mutable_update()->set_rank(5);
  box.Push(u);
  auto out = box.Take();
  ASSERT_EQ(out.size(), 2u);
  v1::WorkerMessage later;
  later.mutable_update()->set_rank(6);
  box.Push(later);
  box.Requeue(out);
  auto again = box.Take();
  ASSERT_EQ(again.size(), 3u);
  EXPECT_TRUE(again[0].has_logs());
  EXPECT_EQ(again[1].update().rank(), 5);
  EXPECT_EQ(again[2].update().rank(), 6);
}

}  // namespace
}  // namespace dyt::worker
