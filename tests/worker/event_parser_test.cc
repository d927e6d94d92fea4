#include "services/worker/event_parser.h"

#include <gtest/gtest.h>

namespace dyt::worker {
namespace {

TEST(EventParserTest, StepFillsProgress) {
  auto e =
      ParseEventLine(R"({"event":"step","time":1.5,"step":12,"steps":100,"loss":3.25,"lr":0.001,)"
                     R"("grad_norm":0.7,"tokens_per_s":1234.5,"step_seconds":0.1,"tokens":4096,)"
                     R"("alpha":[0.5,0.6],"alpha_min":0.5,"alpha_mean":0.55,"alpha_max":0.6})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->kind, ParsedEvent::Kind::kStep);
  EXPECT_EQ(e->progress.step(), 12);
  EXPECT_EQ(e->progress.steps(), 100);
  EXPECT_DOUBLE_EQ(e->progress.loss(), 3.25);
  EXPECT_DOUBLE_EQ(e->progress.lr(), 0.001);
  EXPECT_DOUBLE_EQ(e->progress.grad_norm(), 0.7);
  EXPECT_DOUBLE_EQ(e->progress.tokens_per_s(), 1234.5);
  EXPECT_DOUBLE_EQ(e->progress.alpha_min(), 0.5);
  EXPECT_DOUBLE_EQ(e->progress.alpha_mean(), 0.55);
  EXPECT_DOUBLE_EQ(e->progress.alpha_max(), 0.6);
}

TEST(EventParserTest, TrackerKeepsValLossAcrossSteps) {
  ProgressTracker t;
  t.Merge(*ParseEventLine(R"({"event":"step","step":10,"steps":20,"loss":4.0})"));
  t.Merge(*ParseEventLine(R"({"event":"eval","step":10,"val_loss":4.5})"));
  EXPECT_EQ(t.progress().step(), 10);
  EXPECT_DOUBLE_EQ(t.progress().loss(), 4.0);
  EXPECT_DOUBLE_EQ(t.progress().val_loss(), 4.5);
  t.Merge(*ParseEventLine(R"({"event":"step","step":11,"steps":20,"loss":3.9})"));
  EXPECT_EQ(t.progress().step(), 11);
  EXPECT_DOUBLE_EQ(t.progress().loss(), 3.9);
  EXPECT_DOUBLE_EQ(t.progress().val_loss(), 4.5);
  EXPECT_EQ(t.progress().steps(), 20);
}

// A stopping trainer checkpoints at a step it never logged: that step (and its loss) is the
// job's progress, so a cancelled or preempted job does not look less far along than its newest
// checkpoint. An older checkpoint changes nothing.
TEST(EventParserTest, ACheckpointPastTheLastLoggedStepMovesProgress) {
  ProgressTracker t;
  t.Merge(*ParseEventLine(R"({"event":"step","step":30,"steps":100,"loss":4.0})"));
  t.Merge(*ParseEventLine(R"({"event":"eval","step":30,"val_loss":4.5})"));
  t.Merge(*ParseEventLine(R"({"event":"checkpoint","step":37,"dir":"/a","loss":3.75})"));
  EXPECT_EQ(t.progress().step(), 37);
  EXPECT_DOUBLE_EQ(t.progress().loss(), 3.75);
  EXPECT_DOUBLE_EQ(t.progress().val_loss(), 4.5);
  EXPECT_EQ(t.progress().steps(), 100);
  t.Merge(*ParseEventLine(R"({"event":"checkpoint","step":20,"dir":"/b","loss":9})"));
  EXPECT_EQ(t.progress().step(), 37);
  EXPECT_DOUBLE_EQ(t.progress().loss(), 3.75);
}

TEST(EventParserTest, CheckpointBecomesARecord) {
  auto e = ParseEventLine(
      R"({"event":"checkpoint","step":40,"dir":"/a/job-1/step-000000040","bytes":300,)"
      R"("seconds":0.2,"loss":2.5,"val_loss":2.75,"files":[{"name":"model.safetensors","size":200,)"
      R"("sha256":"ab"},{"name":"manifest.json","size":100,"sha256":"cd"}]})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, ParsedEvent::Kind::kCheckpoint);
  EXPECT_EQ(e->checkpoint.step(), 40);
  EXPECT_EQ(e->checkpoint.path(), "/a/job-1/step-000000040");
  EXPECT_EQ(e->checkpoint.total_bytes(), 300);
  EXPECT_DOUBLE_EQ(e->checkpoint.loss(), 2.5);
  EXPECT_DOUBLE_EQ(e->checkpoint.val_loss(), 2.75);
  ASSERT_EQ(e->checkpoint.files_size(), 2);
  EXPECT_EQ(e->checkpoint.files(0).name(), "model.safetensors");
  EXPECT_EQ(e->checkpoint.files(0).size(), 200);
  EXPECT_EQ(e->checkpoint.files(1).sha256(), "cd");
  // Before any evaluation the trainer writes val_loss null: 0 in the record ("-" in dytctl).
  auto early = ParseEventLine(R"({"event":"checkpoint","step":1,"dir":"/a","val_loss":null})");
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->checkpoint.val_loss(), 0);
}

TEST(EventParserTest, ErrorAndOtherEvents) {
  auto e = ParseEventLine(R"({"event":"error","message":"INVALID_ARGUMENT: boom"})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, ParsedEvent::Kind::kError);
  EXPECT_EQ(e->message, "INVALID_ARGUMENT: boom");
  auto done = ParseEventLine(R"({"event":"done","step":5,"loss":1})");
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->kind, ParsedEvent::Kind::kOther);
  EXPECT_EQ(done->name, "done");
}

TEST(EventParserTest, BadLinesAreRefused) {
  EXPECT_FALSE(ParseEventLine("").ok());
  EXPECT_FALSE(ParseEventLine("not json").ok());
  EXPECT_FALSE(ParseEventLine("[1,2]").ok());
  EXPECT_FALSE(ParseEventLine(R"({"step":3})").ok());
  EXPECT_FALSE(ParseEventLine(R"({"event":3})").ok());
  // Wrong field types do not crash; they read as 0.
  auto e = ParseEventLine(R"({"event":"step","step":"x","loss":null})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->progress.step(), 0);
}

}  // namespace
}  // namespace dyt::worker
