// SchedulerMetrics: dyt-scheduler's Prometheus metrics (prometheus-cpp), served by the binary's
// Exposer on --metrics-listen. Names follow Prometheus conventions: `dyt_scheduler_` prefix,
// base units (seconds), `_total` counters; labels are bounded (state, kind, method, code; never
// a job id or step). deploy/README.md ("Metrics") lists them all.
//
// Thread safe (prometheus-cpp metrics are atomic; families lock when adding a label set).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "dyt/v1/job.pb.h"

namespace dyt {

class SchedulerMetrics {
 public:
  SchedulerMetrics();

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // Jobs by state: call on every transition (from JOB_STATE_UNSPECIFIED for a new job). A
  // transition into SUCCEEDED, FAILED or CANCELLED also counts in
  // dyt_scheduler_jobs_finished_total.
  void JobTransition(v1::JobState from, v1::JobState to);
  void SetJobsInState(v1::JobState state, double count);
  void Submitted() { submissions_->Increment(); }
  void Scheduled(double queued_seconds) { scheduling_latency_->Observe(queued_seconds); }
  void SetQueueDepth(double depth) { queue_depth_->Set(depth); }
  // The wait of the longest-waiting queued job asking for `kind` slots (0: none): a starved
  // job shows here while other jobs are placed (alert DytJobWaitingLong).
  void SetOldestQueued(const std::string& kind, double seconds);
  // Registered workers by state; shut_down: disconnected after saying it was shutting down
  // (a planned stop, which DytWorkerDisconnected must not page on).
  void SetWorkers(double connected, double disconnected, double shut_down);
  void SetWorkersDraining(double draining) { workers_draining_->Set(draining); }
  void SetSlots(const std::string& kind, double total, double allocated);
  void Preempted() { preemptions_->Increment(); }
  void Restarted() { restarts_->Increment(); }
  void WorkerLost() { workers_lost_->Increment(); }
  // One finished RPC: its method ("SubmitJob"), status code name ("OK", "NOT_FOUND") and time.
  void Rpc(const std::string& method, const std::string& code, double seconds);
  // One finished stream (not timed: its length is the client's).
  void StreamEnded(const std::string& method, const std::string& code) {
    streams_->Add({{"method", method}, {"code", code}}).Increment();
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* jobs_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Counter* submissions_;
  prometheus::Histogram* scheduling_latency_;
  prometheus::Gauge* queue_depth_;
  prometheus::Family<prometheus::Gauge>* oldest_queued_;
  prometheus::Family<prometheus::Gauge>* workers_;
  prometheus::Gauge* workers_draining_;
  prometheus::Family<prometheus::Gauge>* slots_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* restarts_;
  prometheus::Counter* workers_lost_;
  prometheus::Family<prometheus::Counter>* rpcs_;
  prometheus::Family<prometheus::Counter>* streams_;
  prometheus::Family<prometheus::Histogram>* rpc_seconds_;
};

}  // namespace dyt
