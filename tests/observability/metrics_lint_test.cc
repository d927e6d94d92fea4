// The real /metrics output of dyt-scheduler and dyt-worker (processes on loopback, a job
// training) passes `promtool check metrics` (Prometheus' naming and format lint), carries the
// training series the dashboard and alerts use, and a job's series leave the worker's output
// when the job ends (bounded label cardinality).
#include <fstream>
#include <regex>
#include <set>
#include <vector>

#include "tests/observability/obs_test_util.h"

namespace dyt::obs::testing {
namespace {

class MetricsLintTest : public LiveCluster {
 protected:
  // Fetches /metrics, writes it to a file and runs promtool on it; returns the body.
  std::string CheckWithPromtool(int port, const std::string& name) {
    const HttpResponse r = HttpGet(port, "/metrics");
    EXPECT_EQ(r.status, 200) << name << Logs();
    const std::string path = dir_.Join(name + ".metrics.txt");
    std::ofstream(path) << r.body;
    const CommandResult check = RunCommand("promtool check metrics < '" + path + "'");
    EXPECT_EQ(check.code, 0) << name << ": promtool check metrics:\n" << check.output;
    EXPECT_EQ(check.output, "") << name << ": promtool check metrics found problems";
    return r.body;
  }
};

TEST_F(MetricsLintTest, SchedulerAndWorkerMetricsPassPromtoolAndAJobsSeriesGoWithIt) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  const std::string id = SubmitLongJob();
  ASSERT_TRUE(WaitTrainedAndCheckpointed(id));
  // The worker exports what it has read from the trainer's events by now.
  std::string worker;
  ASSERT_TRUE(Eventually(
      [&] {
        worker = HttpGet(worker_metrics_port_, "/metrics").body;
        return worker.find("dyt_job_last_checkpoint_bytes{") != std::string::npos &&
               worker.find("dyt_job_val_loss{") != std::string::npos;
      },
      seconds(20)))
      << worker;

  const std::string scheduler = CheckWithPromtool(scheduler_metrics_port_, "scheduler");
  worker = CheckWithPromtool(worker_metrics_port_, "worker");

  for (const char* line : {"dyt_scheduler_jobs{state=\"RUNNING\"} 1",
                           "dyt_scheduler_jobs_finished_total{state=\"FAILED\"} 0",
                           "dyt_scheduler_workers{state=\"connected\"} 1",
                           "dyt_scheduler_slots{kind=\"cpu\",state=\"allocated\"} 1",
                           "dyt_scheduler_scheduling_latency_seconds_count 1"}) {
    EXPECT_NE(scheduler.find(line), std::string::npos) << line << "\n" << scheduler;
  }
  const std::string job = "job_id=\"" + id + "\"";
  for (const std::string& series :
       std::vector<std::string>{"dyt_job_step{" + job + "}",
                                "dyt_job_target_step{" + job + "} 1000000",
                                "dyt_job_loss{" + job + "}",
                                "dyt_job_val_loss{" + job + "}",
                                "dyt_job_learning_rate{" + job + "}",
                                "dyt_job_grad_norm{" + job + "}",
                                "dyt_job_tokens_per_second{" + job + "}",
                                "dyt_job_step_duration_seconds_count{" + job + "}",
                                "dyt_job_model_flops_per_token{" + job + "}",
                                "dyt_job_mfu_ratio{" + job + "}",
                                "dyt_job_dyt_alpha{" + job + ",stat=\"min\"}",
                                "dyt_job_dyt_alpha{" + job + ",stat=\"mean\"}",
                                "dyt_job_dyt_alpha{" + job + ",stat=\"max\"}",
                                "dyt_job_last_checkpoint_step{" + job + "}",
                                "dyt_job_last_checkpoint_timestamp_seconds{" + job + "}",
                                "dyt_job_last_checkpoint_bytes{" + job + "}",
                                "dyt_job_checkpoint_save_duration_seconds_count{" + job + "}",
                                "dyt_job_start_timestamp_seconds{" + job + "}",
                                "dyt_worker_slots_busy 1",
                                "dyt_worker_trainers_running 1",
                                "dyt_worker_scheduler_connected 1"}) {
    EXPECT_NE(worker.find(series), std::string::npos) << series << "\n" << worker;
  }
  // Values are sane: a positive loss, an MFU in (0, 1), bytes of a real checkpoint.
  auto value = [&](const std::string& series) {
    const size_t at = worker.find(series + " ");
    return at == std::string::npos ? -1.0 : std::stod(worker.substr(at + series.size() + 1));
  };
  EXPECT_GT(value("dyt_job_loss{" + job + "}"), 0);
  const double mfu = value("dyt_job_mfu_ratio{" + job + "}");
  EXPECT_GT(mfu, 0);
  EXPECT_LT(mfu, 1);
  EXPECT_GT(value("dyt_job_last_checkpoint_bytes{" + job + "}"), 1000);
  std::printf("flops/token %.0f, tokens/s %.0f, MFU at 1e12 FLOP/s %.4f\n",
              value("dyt_job_model_flops_per_token{" + job + "}"),
              value("dyt_job_tokens_per_second{" + job + "}"), mfu);
  // Labels stay bounded: only job_id (and stat, kind, state, method, code, le; quantile of
  // prometheus-cpp's own exposer summary) ever appear.
  const std::regex label_re(R"(([a-z_]+)=")");
  std::set<std::string> labels;
  for (const std::string* body : std::vector<const std::string*>{&scheduler, &worker}) {
    for (auto it = std::sregex_iterator(body->begin(), body->end(), label_re);
         it != std::sregex_iterator(); ++it) {
      labels.insert((*it)[1]);
    }
  }
  EXPECT_EQ(labels, (std::set<std::string>{"code", "job_id", "kind", "le", "method", "quantile",
                                           "stat", "state"}));

  // The job ends: its series leave the worker's output.
  ASSERT_TRUE(CancelJob(id));
  EXPECT_TRUE(Eventually(
      [&] {
        worker = HttpGet(worker_metrics_port_, "/metrics").body;
        return !worker.empty() && worker.find(id) == std::string::npos;
      },
      seconds(30)))
      << worker;
  EXPECT_NE(worker.find("dyt_worker_slots_busy 0"), std::string::npos) << worker;

  // The scheduler goes away: the worker says it is no longer connected (DytWorkerNotConnected).
  ::kill(scheduler_, SIGTERM);
  dist::testing::WaitFor(scheduler_, seconds(20));
  scheduler_ = -1;
  EXPECT_TRUE(Eventually(
      [&] {
        worker = HttpGet(worker_metrics_port_, "/metrics").body;
        return worker.find("dyt_worker_scheduler_connected 0") != std::string::npos;
      },
      seconds(10)))
      << worker;
}

}  // namespace
}  // namespace dyt::obs::testing
