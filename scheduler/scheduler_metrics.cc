#include "scheduler/scheduler_metrics.h"

namespace dyt {
namespace {

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace

SchedulerMetrics::SchedulerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  jobs_ = &BuildGauge().Name("dyt_scheduler_jobs").Help("Jobs by state").Register(*registry_);
  for (int s = v1::JobState_MIN; s <= v1::JobState_MAX; ++s) {
    if (s == v1::JOB_STATE_UNSPECIFIED || !v1::JobState_IsValid(s)) continue;
    jobs_->Add({{"state", v1::JobState_Name(static_cast<v1::JobState>(s))}});
  }
  // Terminal states only, created at 0 so rate() and alerts see the series from the start.
  finished_ = &BuildCounter()
                   .Name("dyt_scheduler_jobs_finished_total")
                   .Help("Jobs that reached a terminal state (SUCCEEDED, FAILED, CANCELLED)")
                   .Register(*registry_);
  for (v1::JobState s : {v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}) {
    finished_->Add({{"state", v1::JobState_Name(s)}});
  }
  submissions_ = &BuildCounter()
                      .Name("dyt_scheduler_submissions_total")
                      .Help("Jobs submitted (new jobs acknowledged; idempotent retries excluded)")
                      .Register(*registry_)
                      .Add({});
  scheduling_latency_ = &BuildHistogram()
                             .Name("dyt_scheduler_scheduling_latency_seconds")
                             .Help("Time from a job entering the queue to its placement")
                             .Register(*registry_)
                             .Add({}, Histogram::BucketBoundaries{0.001, 0.01, 0.1, 0.5, 1, 5, 30,
                                                                  60, 300, 1800, 3600, 14400});
  queue_depth_ = &BuildGauge()
                      .Name("dyt_scheduler_queue_depth")
                      .Help("Jobs waiting for slots")
                      .Register(*registry_)
                      .Add({});
  oldest_queued_ = &BuildGauge()
                        .Name("dyt_scheduler_oldest_queued_job_age_seconds")
                        .Help(
                            "How long the longest-waiting queued job of a slot kind has waited "
                            "(since it was queued, or since the scheduler started); 0: none "
                            "waits")
                        .Register(*registry_);
  workers_ =
      &BuildGauge()
           .Name("dyt_scheduler_workers")
           .Help(
               "Registered workers: connected, disconnected (gone without saying so), shut_down "
               "(stopped on purpose; until dytctl workers remove or its return)")
           .Register(*registry_);
  workers_draining_ = &BuildGauge()
                           .Name("dyt_scheduler_workers_draining")
                           .Help("Registered workers that take no new work (drained)")
                           .Register(*registry_)
                           .Add({});
  slots_ = &BuildGauge()
                .Name("dyt_scheduler_slots")
                .Help("Slots of connected workers by kind; state total or allocated")
                .Register(*registry_);
  preemptions_ = &BuildCounter()
                      .Name("dyt_scheduler_preemptions_total")
                      .Help("Running jobs asked to stop to make room for a higher priority")
                      .Register(*registry_)
                      .Add({});
  restarts_ = &BuildCounter()
                   .Name("dyt_scheduler_restarts_total")
                   .Help("Job attempts requeued after a failure (a lost worker or a failed rank)")
                   .Register(*registry_)
                   .Add({});
  workers_lost_ = &BuildCounter()
                       .Name("dyt_scheduler_workers_lost_total")
                       .Help("Workers declared lost after missing heartbeats")
                       .Register(*registry_)
                       .Add({});
  rpcs_ = &BuildCounter()
               .Name("dyt_scheduler_rpcs_total")
               .Help("Finished RPCs by method and status code")
               .Register(*registry_);
  rpc_seconds_ = &BuildHistogram()
                      .Name("dyt_scheduler_rpc_duration_seconds")
                      .Help("RPC handling time by method")
                      .Register(*registry_);
  streams_ =
      &BuildCounter()
           .Name("dyt_scheduler_streams_total")
           .Help(
               "Finished streaming calls (WatchJob, GetJobLogs, DownloadCheckpoint, Connect) by "
               "method and "
               "status code (CANCELLED: the client left)")
           .Register(*registry_);
  // The streams there are, from the start (a counter that appears only with its first
  // increment loses that increment to rate(), and an idle panel shows no series at all).
  for (const char* method : {"WatchJob", "GetJobLogs", "DownloadCheckpoint", "Connect"}) {
    streams_->Add({{"method", method}, {"code", "OK"}});
  }
  SetWorkers(0, 0, 0);
  SetSlots("cpu", 0, 0);
  SetSlots("gpu", 0, 0);
}

void SchedulerMetrics::JobTransition(v1::JobState from, v1::JobState to) {
  if (from == to) return;
  if (from != v1::JOB_STATE_UNSPECIFIED)
    jobs_->Add({{"state", v1::JobState_Name(from)}}).Decrement();
  if (to != v1::JOB_STATE_UNSPECIFIED) jobs_->Add({{"state", v1::JobState_Name(to)}}).Increment();
  if (to == v1::SUCCEEDED || to == v1::FAILED || to == v1::CANCELLED) {
    finished_->Add({{"state", v1::JobState_Name(to)}}).Increment();
  }
}

void SchedulerMetrics::SetJobsInState(v1::JobState state, double count) {
  jobs_->Add({{"state", v1::JobState_Name(state)}}).Set(count);
}

void SchedulerMetrics::SetWorkers(double connected, double disconnected, double shut_down) {
  workers_->Add({{"state", "connected"}}).Set(connected);
  workers_->Add({{"state", "disconnected"}}).Set(disconnected);
  workers_->Add({{"state", "shut_down"}}).Set(shut_down);
}

void SchedulerMetrics::SetSlots(const std::string& kind, double total, double allocated) {
  slots_->Add({{"kind", kind}, {"state", "total"}}).Set(total);
  slots_->Add({{"kind", kind}, {"state", "allocated"}}).Set(allocated);
}

void SchedulerMetrics::SetOldestQueued(const std::string& kind, double seconds) {
  oldest_queued_->Add({{"kind", kind}}).Set(seconds);
}

void SchedulerMetrics::Rpc(const std::string& method, const std::string& code, double seconds) {
  rpcs_->Add({{"method", method}, {"code", code}}).Increment();
  rpc_seconds_->Add({{"method", method}}, LatencyBuckets()).Observe(seconds);
}

}  // namespace dyt
