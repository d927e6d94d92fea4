#include "services/worker/outbox.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/utf8.h"

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

// Each batch names the number of its first line in its rank's output, so the scheduler and
// readers can tell identical lines apart; a dropped line keeps its number (a gap).
TEST(OutboxTest, BatchesNumberTheirLinesPerRankAcrossBatchesAndDrops) {
  Outbox box(/*max_log_lines=*/3);
  box.AddLogLine("j", 1, 0, "same");
  box.AddLogLine("j", 1, 0, "same");
  box.AddLogLine("j", 1, 1, "same");
  box.AddLogLine("j", 1, 0, "dropped");  // over the limit of 3 held lines
  auto first = box.Take(/*flush=*/true);
  ASSERT_EQ(first.size(), 2u);
  for (const auto& m : first) {
    EXPECT_EQ(m.logs().first_line(), 1) << m.DebugString();
    EXPECT_EQ(m.logs().lines_size(), m.logs().rank() == 0 ? 2 : 1);
  }
  box.AddLogLine("j", 1, 0, "after the gap");
  box.AddLogLine("j", 2, 0, "next attempt");
  auto second = box.Take(/*flush=*/true);
  ASSERT_EQ(second.size(), 2u);
  for (const auto& m : second) {
    EXPECT_EQ(m.logs().first_line(), m.logs().attempt() == 1 ? 4 : 1) << m.DebugString();
  }
  // A line dropped while a batch is open closes that batch: the lines after the gap start a
  // new batch with their own number.
  Outbox small(/*max_log_lines=*/1);
  small.AddLogLine("j", 1, 0, "kept");
  small.AddLogLine("j", 1, 0, "dropped");
  auto closed = small.Take();  // the closed batch is queued, not waiting for its delay
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].logs().first_line(), 1);
  small.AddLogLine("j", 1, 0, "third");
  auto third = small.Take(/*flush=*/true);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].logs().first_line(), 3);
}

TEST(Utf8Test, OnlyWellFormedSequencesSurvive) {
  EXPECT_EQ(ToValidUtf8(""), "");
  EXPECT_EQ(ToValidUtf8("plain \xe2\x82\xac \xf0\x9f\x98\x80"),
            "plain \xe2\x82\xac \xf0\x9f\x98\x80");
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(ToValidUtf8("\xc0\xaf"), fffd + fffd);                         // overlong '/'
  EXPECT_EQ(ToValidUtf8("\xe0\x80\xaf"), fffd + fffd + fffd);              // overlong, 3 bytes
  EXPECT_EQ(ToValidUtf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);   // above U+10FFFF
  EXPECT_EQ(ToValidUtf8("ab\xe2\x82"), "ab" + fffd + fffd);                // cut at the end
  EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));  // NUL is valid
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\x80"));
  size_t first = 99;
  EXPECT_EQ(CountInvalidUtf8("plain \xe2\x82\xac", &first), 0u);
  EXPECT_EQ(first, 99u);
  EXPECT_EQ(CountInvalidUtf8("ok \xc0\xaf and \xe2\x82", &first), 4u);  // what ToValidUtf8 replaces
  EXPECT_EQ(first, 3u);
}

// A trainer may print any bytes (a file name in Latin-1, a cut multi-byte character); what the
// outbox hands out always serializes, the bad bytes shown as U+FFFD.
TEST(OutboxTest, TextThatIsNotUtf8IsMadeValidSoTheMessageCanBeSent) {
  Outbox box;
  box.AddLogLine("j", 1, 0, "caf\xe9 au lait");
  box.AddLogLine("j", 1, 0, "ok \xc3\xa9");  // valid: unchanged
  v1::WorkerMessage exited;
  v1::RankUpdate* u = exited.mutable_update();
  u->set_reason("exited with code 1: cannot open /data/caf\xe9/x.bin");
  u->set_stderr_tail("line\n\xff\xfe\n\xed\xa0\x80 surrogate");
  u->mutable_progress()->set_step(3);
  box.Push(exited);
  auto out = box.Take();
  ASSERT_EQ(out.size(), 2u);
  for (const auto& m : out) {
    std::string bytes;
    EXPECT_TRUE(m.SerializeToString(&bytes)) << m.ShortDebugString();
    v1::WorkerMessage back;  // what the scheduler does: proto3 refuses invalid UTF-8 here
    EXPECT_TRUE(back.ParseFromString(bytes)) << m.ShortDebugString();
  }
  EXPECT_EQ(out[0].logs().lines(0), "caf\xef\xbf\xbd au lait");
  EXPECT_EQ(out[0].logs().lines(1), "ok \xc3\xa9");
  EXPECT_EQ(out[1].update().reason(),
            "exited with code 1: cannot open /data/caf\xef\xbf\xbd/x.bin");
  EXPECT_EQ(out[1].update().stderr_tail(),
            "line\n\xef\xbf\xbd\xef\xbf\xbd\n\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd surrogate");
  EXPECT_EQ(out[1].update().progress().step(), 3);
}

}  // namespace
}  // namespace dyt::worker
