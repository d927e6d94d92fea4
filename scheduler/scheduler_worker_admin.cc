// Scheduler: what operators do to workers — drain (no new work; optionally move its jobs away),
// undrain, and remove a worker that is gone for good (docs/scheduler.md, "Draining workers").
#include <google/protobuf/util/time_util.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "common/reason_rules.h"
#include "scheduler/scheduler.h"

namespace dyt {
namespace {

using google::protobuf::util::TimeUtil;

Status CheckWorkerIdGiven(const std::string& id) {
  if (id.empty()) return InvalidArgument("worker_id: required");
  if (id.size() > 64) return InvalidArgument("worker_id: at most 64 characters");
  return Status::Ok();
}

}  // namespace

StatusOr<v1::WorkerStatus> Scheduler::DrainWorker(const v1::DrainWorkerRequest& request) {
  DYT_RETURN_IF_ERROR(CheckWorkerIdGiven(request.worker_id()));
  if (std::string rule = ReasonRule(request.reason(), /*multiline=*/false); !rule.empty()) {
    return InvalidArgument("reason: " + rule);
  }
  if (!request.drain() && request.preempt()) {
    return InvalidArgument("preempt: only with drain (jobs are moved off a worker being drained)");
  }
  if (!request.drain() && !request.reason().empty()) {
    return InvalidArgument("reason: only with drain");
  }
  std::lock_guard lock(mu_);
  auto it = workers_.find(request.worker_id());
  if (it == workers_.end()) return NotFound("worker " + request.worker_id() + ": not found");
  const std::string& id = it->first;
  Worker& worker = it->second;
  v1::WorkerRecord record = worker.record;
  record.set_draining(request.drain());
  if (request.drain()) {
    record.set_drain_reason(request.reason());
    if (!worker.record.draining()) *record.mutable_drain_since() = TimeUtil::GetCurrentTime();
  } else {
    record.clear_drain_reason();
    record.clear_drain_since();
  }
  DYT_RETURN_IF_ERROR(store_->PutWorker(record));
  worker.record = std::move(record);
  cluster_.SetSchedulable(id,
                          !request.drain() && worker.session != nullptr && !worker.shutting_down);
  if (request.drain()) {
    spdlog::info("worker {} draining{}{}", id, request.reason().empty() ? "" : ": ",
                 request.reason());
  } else {
    spdlog::info("worker {} takes work again", id);
    ReleaseHeld();  // capacity is back: held jobs may fit now
  }

  if (request.drain() && request.preempt()) {
    Batch batch;
    PreemptJobsOn(
        id,
        "worker " + id + " is draining" + (request.reason().empty() ? "" : ": " + request.reason()),
        batch);
    DYT_RETURN_IF_ERROR(Persist(batch));
  }
  UpdateGauges();
  Changed();
  Kick();
  return StatusOf(id, worker, JobsOn(id));
}

void Scheduler::PreemptJobsOn(const std::string& worker_id, const std::string& why, Batch& batch) {
  // RankExited requeues each once its ranks have exited: a requested stop is no failure.
  std::vector<std::string> current;  // jobs whose current attempt has ranks here
  for (const auto& [key, attempt] : attempts_) {
    auto ranks = attempt.live_ranks.find(worker_id);
    if (ranks == attempt.live_ranks.end() || ranks->second.empty()) continue;
    if (IsCurrentAttempt(attempt.job_id, attempt.attempt)) current.push_back(attempt.job_id);
  }
  for (const std::string& job_id : current) {
    auto live = jobs_.find(job_id);
    if (live == jobs_.end() || live->second.preempting) continue;
    LiveJob& job = live->second;
    const v1::JobState state = job.record.job().state();
    if (state != v1::SCHEDULED && state != v1::RUNNING) continue;
    StartPreemption(job, "preempted: " + why, why, batch);
  }
}

Status Scheduler::RemoveWorker(const std::string& worker_id) {
  DYT_RETURN_IF_ERROR(CheckWorkerIdGiven(worker_id));
  std::lock_guard lock(mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return NotFound("worker " + worker_id + ": not found");
  if (it->second.session != nullptr) {
    return FailedPrecondition("worker " + worker_id +
                              " is connected; stop its dyt-worker first (drain it to move its "
                              "jobs away)");
  }
  if (const std::vector<std::string> jobs = JobsOn(worker_id); !jobs.empty()) {
    return FailedPrecondition(
        "worker " + worker_id + " still has ranks of " + jobs.front() +
        (jobs.size() > 1 ? " and " + std::to_string(jobs.size() - 1) + " more jobs" : "") +
        fmt::format("; they count as lost once it has missed heartbeats for {:g} s",
                    options_.heartbeat_timeout.count() / 1000.0));
  }
  DYT_RETURN_IF_ERROR(store_->DeleteWorker(worker_id));
  cluster_.RemoveWorker(worker_id);
  workers_.erase(it);
  spdlog::info("worker {} removed", worker_id);
  UpdateGauges();
  Changed();
  Kick();  // less capacity: jobs that no longer fit anywhere are held with a reason
  return Status::Ok();
}

}  // namespace dyt
