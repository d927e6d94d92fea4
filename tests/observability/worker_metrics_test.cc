// WorkerMetrics in process (its registry serialised as Prometheus text), the FLOPs-per-token
// and MFU arithmetic, and the event fields the metrics read (start, step_seconds, alpha,
// checkpoint seconds, a null loss).
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cmath>

#include "services/worker/event_parser.h"
#include "services/worker/metrics.h"
#include "services/worker/model_flops.h"

namespace dyt::worker {
namespace {

std::string Text(WorkerMetrics& m) {
  return prometheus::TextSerializer().Serialize(m.registry().Collect());
}

ModelShape Shape(bool tied) {
  ModelShape s;
  s.params = 1000;
  s.vocab_size = 10;
  s.dim = 4;
  s.n_layers = 2;
  s.max_seq_len = 16;
  s.tie_embeddings = tied;
  return s;
}

TEST(ModelFlopsTest, PalmFormulaWithoutTheUntiedEmbedding) {
  // 6 * (1000 - 10 * 4) + 12 * 2 * 4 * 8
  EXPECT_DOUBLE_EQ(TrainingFlopsPerToken(Shape(false), 8), 6.0 * 960 + 768);
  EXPECT_DOUBLE_EQ(TrainingFlopsPerToken(Shape(true), 8), 6.0 * 1000 + 768);
  // seq_len 0: the model's max_seq_len.
  EXPECT_DOUBLE_EQ(TrainingFlopsPerToken(Shape(true), 0), 6.0 * 1000 + 12 * 2 * 4 * 16);
  EXPECT_EQ(TrainingFlopsPerToken(ModelShape{}, 8), 0);
  EXPECT_DOUBLE_EQ(ModelFlopsUtilization(6528, 100, 2e6), 6528.0 * 100 / 2e6);
  EXPECT_EQ(ModelFlopsUtilization(6528, 100, 0), 0);
  EXPECT_EQ(ModelFlopsUtilization(0, 100, 1e6), 0);
}

TEST(ModelFlopsTest, KnownGpusHaveTheirDenseBf16Peak) {
  EXPECT_DOUBLE_EQ(KnownGpuPeakFlops("NVIDIA H200"), 989.4e12);
  EXPECT_DOUBLE_EQ(KnownGpuPeakFlops("NVIDIA H100 80GB HBM3"), 989.4e12);
  EXPECT_DOUBLE_EQ(KnownGpuPeakFlops("NVIDIA H100 PCIe"), 756e12);
  EXPECT_DOUBLE_EQ(KnownGpuPeakFlops("NVIDIA H100 NVL"), 835e12);
  EXPECT_DOUBLE_EQ(KnownGpuPeakFlops("NVIDIA A100-SXM4-80GB"), 312e12);
  EXPECT_EQ(KnownGpuPeakFlops("NVIDIA GeForce RTX 4090"), 0);
  EXPECT_EQ(KnownGpuPeakFlops(""), 0);
}

TEST(WorkerMetricsTest, AJobsSeriesAppearWithTheirEventsAndLeaveWithTheJob) {
  WorkerMetricsOptions options;
  options.kind = "cpu";
  options.slots = 4;
  options.peak_flops_per_slot = 1e6;
  auto created = WorkerMetrics::Create(options);
  ASSERT_TRUE(created.ok()) << created.status().message();
  WorkerMetrics& m = **created;
  EXPECT_EQ(m.port(), 0);

  m.JobStarted("job-1", 2, 8);
  m.JobModel("job-1", Shape(false));
  // Started, no step yet: its start time, no made-up zeros (a loss of 0 made
  // min_over_time(dyt_job_loss) 0 and DytJobLossDiverging fire on a healthy job).
  std::string started = Text(m);
  EXPECT_NE(started.find("dyt_job_start_timestamp_seconds{job_id=\"job-1\"}"), std::string::npos)
      << started;
  for (const char* name :
       {"dyt_job_step{", "dyt_job_target_step{", "dyt_job_loss{", "dyt_job_learning_rate{",
        "dyt_job_grad_norm{", "dyt_job_tokens_per_second{"}) {
    EXPECT_EQ(started.find(name), std::string::npos) << name << "\n" << started;
  }
  v1::Progress p;
  p.set_step(7);
  p.set_steps(100);
  p.set_loss(3.25);
  p.set_lr(1e-3);
  p.set_grad_norm(0.5);
  p.set_tokens_per_s(100);
  m.JobStep("job-1", p, 0.25, /*has_alpha=*/false);
  std::string text = Text(m);
  EXPECT_NE(text.find("dyt_job_step{job_id=\"job-1\"} 7"), std::string::npos) << text;
  EXPECT_NE(text.find("dyt_job_target_step{job_id=\"job-1\"} 100"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_loss{job_id=\"job-1\"} 3.25"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_learning_rate{job_id=\"job-1\"} 0.001"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_grad_norm{job_id=\"job-1\"} 0.5"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_model_flops_per_token{job_id=\"job-1\"} 6528"), std::string::npos);
  // 6528 FLOPs/token * 100 tokens/s over 2 slots * 1e6 FLOP/s.
  EXPECT_NE(text.find("dyt_job_mfu_ratio{job_id=\"job-1\"} 0.3264"), std::string::npos) << text;
  EXPECT_NE(text.find("dyt_job_step_duration_seconds_count{job_id=\"job-1\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("dyt_job_step_duration_seconds_bucket{job_id=\"job-1\",le=\"0.25\"} 1"),
            std::string::npos);
  // Not yet reported: no series rather than a made-up 0.
  EXPECT_EQ(text.find("dyt_job_val_loss{"), std::string::npos);
  EXPECT_EQ(text.find("dyt_job_dyt_alpha{"), std::string::npos);
  EXPECT_EQ(text.find("dyt_job_last_checkpoint_step{"), std::string::npos);

  p.set_alpha_min(0.4);
  p.set_alpha_mean(0.5);
  p.set_alpha_max(0.75);
  m.JobStep("job-1", p, 0.25, /*has_alpha=*/true);
  m.JobEval("job-1", 3.5);
  m.JobCheckpoint("job-1", 7, 123456, 0.2);
  text = Text(m);
  EXPECT_NE(text.find("dyt_job_dyt_alpha{job_id=\"job-1\",stat=\"min\"} 0.4"), std::string::npos)
      << text;
  EXPECT_NE(text.find("dyt_job_dyt_alpha{job_id=\"job-1\",stat=\"mean\"} 0.5"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_dyt_alpha{job_id=\"job-1\",stat=\"max\"} 0.75"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_val_loss{job_id=\"job-1\"} 3.5"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_last_checkpoint_step{job_id=\"job-1\"} 7"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_last_checkpoint_bytes{job_id=\"job-1\"} 123456"), std::string::npos);
  EXPECT_NE(text.find("dyt_job_checkpoint_save_duration_seconds_sum{job_id=\"job-1\"} 0.2"),
            std::string::npos);
  EXPECT_NE(text.find("dyt_job_last_checkpoint_timestamp_seconds{job_id=\"job-1\"} 1"),
            std::string::npos);  // a Unix time (1.7e9 these years)

  // A second job; the first ends.
  m.JobStep("job-2", p, 0.1, true);
  m.JobRestart();
  m.RemoveJob("job-1");
  text = Text(m);
  EXPECT_EQ(text.find("job-1"), std::string::npos) << text;
  EXPECT_NE(text.find("dyt_job_loss{job_id=\"job-2\"}"), std::string::npos);
  EXPECT_NE(text.find("dyt_worker_trainer_restarts_total 1"), std::string::npos);
  // No peak for job-2's slots (not started here): no MFU.
  EXPECT_EQ(text.find("dyt_job_mfu_ratio{job_id=\"job-2\"}"), std::string::npos);
  m.RemoveJob("job-2");
  m.RemoveJob("job-2");  // twice is harmless
  EXPECT_EQ(Text(m).find("job_id"), std::string::npos);
}

TEST(WorkerMetricsTest, ANegativePeakIsRefused) {
  WorkerMetricsOptions options;
  options.kind = "gpu";
  options.peak_flops_per_slot = -1;
  auto m = WorkerMetrics::Create(options);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("peak_flops_per_slot"), std::string::npos);
}

TEST(EventFieldsTest, StartStepCheckpointAndNullLoss) {
  auto start = ParseEventLine(
      R"({"event":"start","step":0,"steps":10,"params":5000,"model":{"vocab_size":64,)"
      R"("dim":32,"n_layers":2,"max_seq_len":16,"tie_embeddings":true}})");
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(start->kind, ParsedEvent::Kind::kStart);
  EXPECT_EQ(start->model.params, 5000);
  EXPECT_EQ(start->model.vocab_size, 64);
  EXPECT_EQ(start->model.dim, 32);
  EXPECT_EQ(start->model.n_layers, 2);
  EXPECT_EQ(start->model.max_seq_len, 16);
  EXPECT_TRUE(start->model.tie_embeddings);

  auto step =
      ParseEventLine(R"({"event":"step","step":3,"loss":2.5,"step_seconds":0.125,"alpha_min":0.4,)"
                     R"("alpha_mean":0.5,"alpha_max":0.6})");
  ASSERT_TRUE(step.ok());
  EXPECT_DOUBLE_EQ(step->step_seconds, 0.125);
  EXPECT_TRUE(step->has_alpha);
  auto rms = ParseEventLine(R"({"event":"step","step":3,"loss":2.5})");
  ASSERT_TRUE(rms.ok());
  EXPECT_FALSE(rms->has_alpha);

  auto ckpt = ParseEventLine(R"({"event":"checkpoint","step":5,"bytes":900,"seconds":0.75})");
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->checkpoint.total_bytes(), 900);
  EXPECT_DOUBLE_EQ(ckpt->checkpoint_seconds, 0.75);

  auto nan = ParseEventLine(R"({"event":"step","step":4,"loss":null})");
  ASSERT_TRUE(nan.ok());
  EXPECT_TRUE(std::isnan(nan->progress.loss()));
  auto nan_val = ParseEventLine(R"({"event":"eval","step":4,"val_loss":null})");
  ASSERT_TRUE(nan_val.ok());
  EXPECT_TRUE(std::isnan(nan_val->progress.val_loss()));
}

}  // namespace
}  // namespace dyt::worker
