// Scheduler: scheduling passes, preemption, and the end of an attempt (requeue, finish).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "common/job_run_time.h"
#include "scheduler/job_states.h"
#include "scheduler/scheduler.h"
#include "trainer/checkpoint/checkpoint_names.h"

namespace dyt {
namespace {

GangRequest RequestOf(const v1::JobSpec& spec) {
  GangRequest request;
  request.ranks = spec.resources().ranks() > 0 ? spec.resources().ranks() : 1;
  request.slots_per_rank =
      spec.resources().slots_per_rank() > 0 ? spec.resources().slots_per_rank() : 1;
  request.kind = spec.resources().kind().empty() ? "cpu" : spec.resources().kind();
  return request;
}

// Appends `attempt`'s workers to job.attempt_workers, keeping the last kMaxAttemptWorkers.
void RecordAttemptWorkers(int attempt, const std::set<std::string>& workers, v1::Job* job) {
  constexpr int kMaxAttemptWorkers = 100;
  auto* history = job->mutable_attempt_workers();
  if (history->size() >= kMaxAttemptWorkers) {
    history->DeleteSubrange(0, history->size() - kMaxAttemptWorkers + 1);
  }
  v1::AttemptWorkers* entry = history->Add();
  entry->set_attempt(attempt);
  for (const auto& worker_id : workers) entry->add_worker_ids(worker_id);
}

}  // namespace

void Scheduler::SchedulePass(Batch& batch) {
  // Pools whose first unplaceable job blocks the rest (strict priority/FIFO, no backfill).
  std::set<std::string> blocked;
  // Feasibility is the same for every job asking the same shape: compute it once per pass.
  std::map<std::tuple<std::string, int, int>, std::pair<bool, std::string>> feasible;
  std::vector<std::string> placed;
  std::vector<JobQueue::Entry> held;
  auto now = std::chrono::steady_clock::now();

  queue_.ForEach([&](const JobQueue::Entry& entry) {
    auto it = jobs_.find(entry.job_id);
    if (it == jobs_.end()) return true;
    LiveJob& job = it->second;
    if (job.not_before > now) return true;  // restart backoff: neither placed nor blocking
    GangRequest request = RequestOf(job.record.job().spec());
    if (blocked.count(request.kind) > 0) return true;
    auto key = std::make_tuple(request.kind, request.ranks, request.slots_per_rank);
    auto f = feasible.find(key);
    if (f == feasible.end()) {
      std::string why;
      bool ok = cluster_.CouldEverFit(request, &why);
      f = feasible.emplace(key, std::make_pair(ok, why)).first;
    }
    if (!f->second.first) {
      // Held, with the reason visible to the user; it does not block the jobs behind it. Kept in
      // memory only (no write per held job): it is recomputed on every pass and after a restart.
      std::string reason = "held: " + f->second.second;
      if (job.record.state_reason() != reason) {
        job.record.set_state_reason(reason);
        Changed();
      }
      held.push_back(entry);
      return true;
    }
    std::optional<Placement> placement = cluster_.Place(request);
    if (!placement) {
      if (options_.preemption && !TryPreempt(job, request, batch) &&
          job.record.state_reason().rfind("waiting", 0) != 0) {
        job.record.set_state_reason("waiting for " + std::to_string(request.ranks) + " x " +
                                    std::to_string(request.slots_per_rank) + " free " +
                                    request.kind + " slots");
        Changed();
      }
      if (!options_.backfill) blocked.insert(request.kind);
      return true;
    }
    int attempt = job.record.job().attempt() + 1;
    std::string owner = AttemptKey(entry.job_id, attempt);
    Status allocated = cluster_.Allocate(owner, *placement);
    if (!allocated.ok()) {  // Place and Allocate disagree: a bug; skip the job this pass
      spdlog::error("job {}: {}", entry.job_id, allocated.ToString());
      return true;
    }
    Attempt& slots = attempts_[owner];
    slots.job_id = entry.job_id;
    slots.attempt = attempt;
    job.ranks.clear();
    job.preempting = false;
    job.record.clear_preemption();
    job.record.mutable_job()->set_attempt(attempt);
    job.record.clear_placement();
    std::set<std::string> on;
    for (const auto& rank : *placement) {
      *job.record.add_placement() = rank;
      slots.live_ranks[rank.worker_id()].insert(rank.rank());
      job.ranks[rank.rank()] = RankState{};
      on.insert(rank.worker_id());
    }
    RecordAttemptWorkers(attempt, on, job.record.mutable_job());
    std::string workers;
    for (const auto& worker_id : on) {
      v1::SchedulerMessage message;
      *message.mutable_assign() = MakeAssignment(job, worker_id);
      pending_sends_.emplace_back(worker_id, std::move(message));
      workers += (workers.empty() ? "" : ", ") + worker_id;
    }
    SetState(job, v1::SCHEDULED, "attempt " + std::to_string(attempt) + " placed on " + workers,
             batch);
    if (metrics_ != nullptr) {
      metrics_->Scheduled(std::chrono::duration<double>(now - job.queued_at).count());
    }
    placed.push_back(entry.job_id);
    return true;
  });
  for (const auto& id : placed) queue_.Remove(id);
  for (const auto& entry : held) {
    queue_.Remove(entry.job_id);
    held_[entry.job_id] = entry;
  }
}

void Scheduler::Unqueue(const std::string& job_id) {
  queue_.Remove(job_id);
  held_.erase(job_id);
}

void Scheduler::ReleaseHeld() {
  for (const auto& [id, entry] : held_) queue_.Push(entry);
  held_.clear();
}

v1::Assignment Scheduler::MakeAssignment(const LiveJob& job, const std::string& worker_id) const {
  const v1::Job& api = job.record.job();
  v1::Assignment a;
  a.set_job_id(api.id());
  a.set_attempt(api.attempt());
  *a.mutable_spec() = api.spec();
  a.set_world_size(job.record.placement_size());
  for (const auto& rank : job.record.placement()) {
    if (rank.worker_id() == worker_id) *a.add_ranks() = rank;
  }
  a.set_checkpoint_dir(options_.artifact_root + "/" + api.id());
  a.set_rendezvous_id(api.id() + ".a" + std::to_string(api.attempt()));
  a.set_scheduler_address(options_.advertise_address);
  for (const std::string& root : options_.data_roots) a.add_data_roots(root);
  if (!api.spec().init_from_job().empty()) {
    // The checkpoint the submission found (JobServiceImpl::ResolveInitFrom).
    a.set_init_checkpoint(options_.artifact_root + "/" + api.spec().init_from_job() + "/" +
                          StepDirName(api.spec().init_from_step()));
  }
  return a;
}

std::string Scheduler::PlacementPreview(const v1::JobSpec& spec) const {
  std::lock_guard lock(mu_);
  const GangRequest request = RequestOf(spec);
  std::string why;
  if (!cluster_.CouldEverFit(request, &why)) return "would be held: " + why;
  // Queued jobs of its kind that the pass visits first (priority, then submission order: all
  // queued ones at an equal or higher priority).
  int ahead = 0;
  queue_.ForEach([&](const JobQueue::Entry& entry) {
    if (entry.priority < spec.priority()) return false;
    auto job = jobs_.find(entry.job_id);
    if (job != jobs_.end() && RequestOf(job->second.record.job().spec()).kind == request.kind) {
      ++ahead;
    }
    return true;
  });
  const std::string queued = std::to_string(ahead) + " queued " + request.kind +
                             (ahead == 1 ? " job" : " jobs") +
                             " of priority >= " + std::to_string(spec.priority()) +
                             (ahead == 1 ? " goes first" : " go first");
  const int free = cluster_.free_slots_of(request.kind);
  const std::string slots = std::to_string(request.ranks) + " x " +
                            std::to_string(request.slots_per_rank) + " " + request.kind +
                            " slots (" + std::to_string(std::max(0, free)) + " of " +
                            std::to_string(cluster_.total_slots(request.kind)) + " free now)";
  std::optional<Placement> placement = cluster_.Place(request);
  if (!placement) return "would wait for " + slots + (ahead > 0 ? "; " + queued : "");
  if (ahead > 0) return "would wait: " + slots + " fit now, but " + queued;
  std::set<std::string> workers;
  for (const auto& rank : *placement) workers.insert(rank.worker_id());
  std::string on;
  for (const auto& w : workers) on += (on.empty() ? "" : ", ") + w;
  return "would start now on " + on;
}

bool Scheduler::TryPreempt(const LiveJob& head, const GangRequest& request, Batch& batch) {
  // Already making room (for this job or another): wait for those ranks to exit first, so one
  // blocked job never preempts more than it needs.
  for (const auto& [id, job] : jobs_) {
    if (job.preempting) return true;
  }
  std::vector<RunningJob> running;
  for (const auto& [id, job] : jobs_) {
    v1::JobState state = job.record.job().state();
    if (state != v1::SCHEDULED && state != v1::RUNNING) continue;
    RunningJob r;
    r.owner = AttemptKey(id, job.record.job().attempt());
    r.priority = job.record.job().spec().priority();
    r.order = job.order;
    r.placement.assign(job.record.placement().begin(), job.record.placement().end());
    running.push_back(std::move(r));
  }
  int priority = head.record.job().spec().priority();
  std::optional<std::vector<std::string>> victims =
      ChoosePreemptionVictims(cluster_, request, priority, running);
  if (!victims || victims->empty()) return false;
  for (const auto& owner : *victims) {
    std::string job_id = owner.substr(0, owner.rfind('#'));
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) continue;
    const std::string why =
        "for " + head.record.job().id() + " (priority " + std::to_string(priority) + ")";
    StartPreemption(it->second, "preempted " + why, "preempting " + why, batch);
  }
  return true;
}

void Scheduler::StartPreemption(LiveJob& job, const std::string& event_reason,
                                const std::string& state_reason, Batch& batch) {
  job.preempting = true;
  job.stop_sent = std::chrono::steady_clock::now();
  job.record.set_preemption(event_reason);
  job.record.set_state_reason(state_reason);
  batch.emplace_back(job.record, std::nullopt);
  StopRanks(job.record.job().id(), job.record.job().attempt(), v1::StopJob::PREEMPT);
  if (metrics_ != nullptr) metrics_->Preempted();
  spdlog::info("job {}: {}", job.record.job().id(), event_reason);
}

void Scheduler::SendStop(const std::string& worker_id, const std::string& job_id, int attempt,
                         v1::StopJob::Reason reason) {
  v1::SchedulerMessage message;
  v1::StopJob* stop = message.mutable_stop();
  stop->set_job_id(job_id);
  stop->set_attempt(attempt);
  stop->set_reason(reason);
  stop->set_grace_ms(static_cast<int32_t>(options_.stop_grace.count()));
  pending_sends_.emplace_back(worker_id, std::move(message));
}

void Scheduler::StopRanks(const std::string& job_id, int attempt, v1::StopJob::Reason reason) {
  auto it = attempts_.find(AttemptKey(job_id, attempt));
  if (it == attempts_.end()) return;
  for (const auto& [worker_id, ranks] : it->second.live_ranks) {
    if (!ranks.empty()) SendStop(worker_id, job_id, attempt, reason);
  }
}

void Scheduler::Finish(LiveJob& job, v1::JobState state, const std::string& reason, Batch& batch) {
  const std::string id = job.record.job().id();
  job.record.clear_placement();
  job.record.clear_preemption();
  SetState(job, state, reason, batch);
  Unqueue(id);
  logs_.Finish(id);
  jobs_.erase(id);  // `job` dangles from here
  Kick();
}

void Scheduler::Requeue(LiveJob& job, v1::JobState via, const std::string& reason, Batch& batch) {
  job.record.clear_placement();
  job.ranks.clear();
  job.preempting = false;
  job.record.clear_preemption();
  SetState(job, via, reason, batch);
  const int64_t step = job.record.job().last_checkpoint_step();
  SetState(job, v1::QUEUED,
           step > 0 ? "requeued; resumes from its latest checkpoint (step " + std::to_string(step) +
                          " so far)"
                    : std::string("requeued; starts over (no checkpoint yet)"),
           batch);
  job.queued_at = std::chrono::steady_clock::now();
  queue_.Push({job.record.job().id(), job.record.job().spec().priority(), job.order});
  Kick();
}

void Scheduler::EndAttempt(LiveJob& job, const std::string& reason, bool failure, Batch& batch,
                           bool retryable) {
  const std::string id = job.record.job().id();
  int attempt = job.record.job().attempt();
  // Whatever still runs of this attempt must stop; its slots free up as the ranks exit.
  StopRanks(id, attempt, v1::StopJob::STALE);
  Status cleared = store_->DeleteRendezvousAttempt(id, attempt);
  if (!cleared.ok()) spdlog::warn("job {}: {}", id, cleared.ToString());
  // However the attempt ended (stopped for the limit, preempted, failed), a job whose running
  // time is used up gets no next attempt.
  const int64_t limit = job.record.job().spec().time_limit_s();
  const double ran = RunSeconds(job.record.job(), PreciseNow());
  if (limit > 0 && ran >= double(limit)) {
    const int64_t step = job.record.job().last_checkpoint_step();
    char text[64];
    std::snprintf(text, sizeof(text), "%.0f", ran);
    Finish(job, v1::FAILED,
           "time limit: its attempts ran " + std::string(text) + " s, time_limit_s is " +
               std::to_string(limit) + " (this attempt: " + reason.substr(0, reason.find('\n')) +
               ")" +
               (step > 0 ? "; its latest checkpoint is step " + std::to_string(step) +
                               ": a job with init_from_job " + id + " goes on from it"
                         : std::string("; it has no checkpoint")),
           batch);
    return;
  }
  if (!failure) {
    Requeue(job, v1::PREEMPTED, reason, batch);
    return;
  }
  int restarts = job.record.job().restarts();
  int max_restarts = job.record.job().spec().max_restarts();
  if (!retryable) {
    Finish(job, v1::FAILED, reason, batch);
    return;
  }
  if (restarts >= max_restarts) {
    Finish(job, v1::FAILED,
           OnFirstLine(reason, "; max_restarts " + std::to_string(max_restarts) + " reached"),
           batch);
    return;
  }
  job.record.mutable_job()->set_restarts(restarts + 1);
  if (metrics_ != nullptr) metrics_->Restarted();
  // Backoff: the base, doubled per earlier restart, capped.
  constexpr std::chrono::milliseconds kMaxRestartBackoff{300000};
  std::chrono::milliseconds backoff = options_.restart_backoff;
  for (int i = 0; i < restarts && backoff < kMaxRestartBackoff; ++i) backoff *= 2;
  backoff = std::min(backoff, kMaxRestartBackoff);
  std::string when;
  if (backoff.count() > 0) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3g", backoff.count() / 1000.0);
    when = ", in " + std::string(seconds) + " s";
  }
  Requeue(job, v1::RESTARTING,
          OnFirstLine(reason, " (restart " + std::to_string(restarts + 1) + " of " +
                                  std::to_string(max_restarts) + when + ")"),
          batch);
  job.not_before = std::chrono::steady_clock::now() + backoff;
}

}  // namespace dyt
