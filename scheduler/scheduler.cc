// Scheduler: lifecycle, submission, cancel, reads, the loop and persistence. Scheduling passes
// and preemption are in scheduler_pass.cc; workers, rank updates and rendezvous in
// scheduler_workers.cc.
#include "scheduler/scheduler.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <set>
#include <utility>

#include "common/job_run_time.h"
#include "scheduler/job_states.h"
#include "scheduler/state_keys.h"
#include "scheduler/state_recovery.h"

namespace dyt {

using google::protobuf::util::TimeUtil;

Scheduler::Scheduler(StateStore* store, SchedulerOptions options, SchedulerMetrics* metrics)
    : store_(store), options_(std::move(options)), metrics_(metrics) {}

Scheduler::~Scheduler() { Stop(); }

std::string Scheduler::AttemptKey(const std::string& job_id, int attempt) {
  return job_id + "#" + std::to_string(attempt);
}

Status Scheduler::Start() {
  DYT_ASSIGN_OR_RETURN(RecoveredState state, LoadAll(*store_));
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    // Workers come back disconnected and not schedulable; each has heartbeat_timeout from now
    // to reconnect before its jobs are requeued.
    for (auto& record : state.workers) {
      Worker& worker = workers_[record.id()];
      worker.record = record;
      worker.shutting_down = record.shut_down();  // a planned stop stays one
      worker.last_heartbeat = now;
      Status added = cluster_.AddWorker(record.id(), record.slot_kind(), record.slots());
      if (!added.ok()) spdlog::warn("worker {}: {}", record.id(), added.ToString());
      cluster_.SetSchedulable(record.id(), false);
    }
    for (auto& record : state.active_jobs) Adopt(std::move(record), /*recovered=*/true);
    if (metrics_ != nullptr) {
      for (const auto& [s, n] : state.jobs_by_state) metrics_->SetJobsInState(s, double(n));
    }
    last_flush_ = now;
    UpdateGauges();
    spdlog::info("scheduler: {} unfinished jobs ({} queued), {} known workers", jobs_.size(),
                 queue_.size(), workers_.size());
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, worker] : workers_) {
      if (worker.session) worker.session->Close();
    }
  }
  loop_cv_.notify_all();
  changed_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  FlushProgress();
}

void Scheduler::Kick() {
  kicked_ = true;
  loop_cv_.notify_one();
}

void Scheduler::Changed() {
  ++version_;
  changed_cv_.notify_all();
}

uint64_t Scheduler::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

uint64_t Scheduler::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  changed_cv_.wait_for(lock, timeout, [&] { return version_ != seen || stopping_; });
  return version_;
}

void Scheduler::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    loop_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return kicked_ || stopping_; });
    if (stopping_) break;
    kicked_ = false;
    Batch batch;
    CheckHeartbeats(batch);
    CheckStops(batch);
    SchedulePass(batch);
    Status persisted = Persist(batch);
    if (!persisted.ok()) {
      // The store refuses writes after a failed WAL sync; only a restart (which reloads the
      // durable state) can go on. Exit so the supervisor restarts us.
      spdlog::critical("scheduler: cannot persist state: {}; exiting", persisted.ToString());
      std::_Exit(70);
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_flush_ >= options_.progress_flush) {
      FlushProgress();
      last_flush_ = now;
    }
    UpdateGauges();
    // Coalesce: under a burst of submissions, one pass per few milliseconds places them all
    // instead of one pass per submission.
    loop_cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return stopping_; });
  }
}

void Scheduler::RunPassForTest() {
  std::lock_guard lock(mu_);
  Batch batch;
  CheckHeartbeats(batch);
  CheckStops(batch);
  SchedulePass(batch);
  Status persisted = Persist(batch);
  if (!persisted.ok()) spdlog::error("persist: {}", persisted.ToString());
  UpdateGauges();
}

Status Scheduler::Persist(Batch& batch) {
  if (batch.empty() && pending_sends_.empty()) return Status::Ok();
  if (!batch.empty()) {
    StateBatch writes = store_->NewBatch();
    for (auto& [record, event] : batch) {
      DYT_RETURN_IF_ERROR(writes.PutJob(record));
      if (event) DYT_RETURN_IF_ERROR(writes.AppendJobEvent(record.job().id(), *event).status());
    }
    DYT_RETURN_IF_ERROR(store_->Commit(writes));
    batch.clear();
  }
  // Only now may workers hear of the changes.
  for (auto& [worker_id, message] : pending_sends_) {
    auto it = workers_.find(worker_id);
    if (it != workers_.end() && it->second.session) it->second.session->Push(std::move(message));
  }
  pending_sends_.clear();
  Changed();
  return Status::Ok();
}

void Scheduler::FlushProgress() {
  StateBatch writes = store_->NewBatch();
  int n = 0;
  for (auto& [id, job] : jobs_) {
    if (!job.progress_dirty) continue;
    Status added = writes.PutJob(job.record);
    if (!added.ok()) continue;
    job.progress_dirty = false;
    ++n;
  }
  if (n == 0) return;
  Status committed = store_->Commit(writes);
  if (!committed.ok()) spdlog::warn("scheduler: progress flush: {}", committed.ToString());
}

void Scheduler::SetState(LiveJob& job, v1::JobState state, const std::string& reason,
                         Batch& batch) {
  auto now = TimeUtil::GetCurrentTime();
  v1::Job* api = job.record.mutable_job();
  v1::JobState from = api->state();
  if (from == v1::QUEUED) CountQueued(job.record, -1);
  if (state == v1::QUEUED) CountQueued(job.record, +1);
  // Running time, for spec.time_limit_s and `get`: each RUNNING spell adds to run_seconds when
  // it ends (wall clock, so that a spell spanning a scheduler restart counts whole).
  if (from == v1::RUNNING && state != v1::RUNNING && api->has_running_since()) {
    api->set_run_seconds(RunSeconds(*api, PreciseNow()));
    api->clear_running_since();
  }
  if (state == v1::RUNNING && from != v1::RUNNING) *api->mutable_running_since() = PreciseNow();
  api->set_state(state);
  *api->mutable_updated() = now;
  job.record.set_state_reason(reason);
  v1::JobEvent event;
  *event.mutable_time() = now;
  event.set_state(state);
  event.set_reason(reason);
  job.progress_dirty = false;
  batch.emplace_back(job.record, event);
  if (metrics_ != nullptr) metrics_->JobTransition(from, state);
  // One line per transition: what happened to a job, and why, is in the service log too.
  spdlog::info("job {} {} -> {} (attempt {}): {}", api->id(), v1::JobState_Name(from),
               v1::JobState_Name(state), api->attempt(), ReasonForLog(reason));
}

void Scheduler::CheckStops(Batch& batch) {
  const auto now = PreciseNow();
  const auto steady_now = std::chrono::steady_clock::now();
  // Ten times a second is ample for limits in whole seconds and a resend every stop_resend;
  // walking every job once per pass (every few ms under load) cost a third of SubmitJob
  // throughput with 30,000 jobs queued.
  if (steady_now - stops_checked_ < std::chrono::milliseconds(100)) return;
  stops_checked_ = steady_now;
  // Only jobs with a live attempt can need a stop: walk those (the attempts), not every job.
  std::set<std::string> live_ids;
  for (const auto& [key, attempt] : attempts_) live_ids.insert(attempt.job_id);
  for (const std::string& id : live_ids) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    LiveJob& job = it->second;
    const v1::Job& api = job.record.job();
    const bool live = api.state() == v1::RUNNING || api.state() == v1::SCHEDULED;
    if (job.preempting && live && steady_now - job.stop_sent >= options_.stop_resend) {
      // Idempotent at the worker (the earlier grace deadline stands).
      job.stop_sent = steady_now;
      StopRanks(id, api.attempt(), v1::StopJob::PREEMPT);
      continue;
    }
    const int64_t limit = api.spec().time_limit_s();
    if (limit <= 0 || api.state() != v1::RUNNING || job.preempting) continue;
    if (RunSeconds(api, now) < double(limit)) continue;
    // Stopped as for a preemption (SIGTERM: the trainers save a checkpoint and exit 3); the
    // attempt's end finds the time used up and ends the job (EndAttempt).
    job.preempting = true;
    job.stop_sent = steady_now;
    job.record.set_preemption("stopped at its time limit");
    job.record.set_state_reason("stopping: time_limit_s " + std::to_string(limit) +
                                " reached; the trainers save a checkpoint");
    batch.emplace_back(job.record, std::nullopt);
    StopRanks(id, api.attempt(), v1::StopJob::PREEMPT);
    spdlog::info("job {}: time_limit_s {} reached: stopping it with a checkpoint", id, limit);
  }
}

void Scheduler::Adopt(v1::JobRecord record, bool recovered) {
  const std::string id = record.job().id();
  if (cancelled_before_adopt_.erase(id) > 0) return;
  if (jobs_.count(id) > 0 || IsTerminalJobState(record.job().state())) return;
  std::optional<uint64_t> number = ParseJobId(id);
  // A job that has run before this scheduler started printed lines it never received.
  if (recovered && record.job().attempt() > 0) logs_.MarkRanBeforeStart(id);
  LiveJob& job = jobs_[id];
  job.order = number.value_or(0);
  // Ranks being stopped for a preemption when the scheduler went down: their stop is still
  // the one asked for.
  job.preempting = !record.preemption().empty();
  job.queued_at = std::chrono::steady_clock::now();
  job.record = std::move(record);
  v1::JobState state = job.record.job().state();
  if (state == v1::SCHEDULED || state == v1::RUNNING) {
    // Recovered with a placement: keep it while its workers reconnect.
    Attempt& attempt = attempts_[AttemptKey(id, job.record.job().attempt())];
    attempt.job_id = id;
    attempt.attempt = job.record.job().attempt();
    Placement placement(job.record.placement().begin(), job.record.placement().end());
    for (const auto& rank : placement) {
      attempt.live_ranks[rank.worker_id()].insert(rank.rank());
      job.ranks[rank.rank()].started = state == v1::RUNNING;
    }
    Status allocated = cluster_.Allocate(AttemptKey(id, attempt.attempt), placement);
    if (!allocated.ok()) spdlog::warn("job {}: recovered placement: {}", id, allocated.ToString());
    return;
  }
  // QUEUED, PREEMPTED, RESTARTING: waiting for slots.
  if (recovered && state != v1::QUEUED) job.record.mutable_job()->set_state(v1::QUEUED);
  CountQueued(job.record, +1);
  queue_.Push({id, job.record.job().spec().priority(), job.order});
}

StatusOr<CreateJobResult> Scheduler::Submit(v1::JobRecord record, const v1::JobEvent& event) {
  std::vector<StateStore::NewJob> one;
  one.push_back({std::move(record), event});
  return std::move(SubmitMany(std::move(one)).front());
}

std::vector<StatusOr<CreateJobResult>> Scheduler::SubmitMany(std::vector<StateStore::NewJob> jobs) {
  std::vector<StatusOr<CreateJobResult>> results = store_->CreateJobs(std::move(jobs));
  std::lock_guard lock(mu_);
  bool any = false;
  for (const auto& result : results) {
    if (!result.ok() || !result->created) continue;
    if (metrics_ != nullptr) {
      metrics_->Submitted();
      metrics_->JobTransition(v1::JOB_STATE_UNSPECIFIED, v1::QUEUED);
    }
    const v1::Job& job = result->record.job();
    const v1::Resources& r = job.spec().resources();
    spdlog::info("job {} submitted by {}: '{}', {} rank(s) x {} {} slot(s), priority {}", job.id(),
                 job.spec().owner(), job.spec().name(), r.ranks(), r.slots_per_rank(), r.kind(),
                 job.spec().priority());
    Adopt(result->record, /*recovered=*/false);
    any = true;
  }
  if (any) {
    Changed();
    Kick();
  }
  return results;
}

StatusOr<v1::JobRecord> Scheduler::Cancel(const std::string& job_id, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    // Finished, unknown, or created but not adopted yet (a Submit racing with us).
    DYT_ASSIGN_OR_RETURN(v1::JobRecord record, store_->GetJob(job_id));
    v1::JobState state = record.job().state();
    if (IsTerminalJobState(state)) {
      return FailedPrecondition("job " + job_id + " is " + v1::JobState_Name(state) +
                                "; only a job that has not finished can be cancelled");
    }
    LiveJob pending;
    pending.record = std::move(record);
    // Never counted (not adopted): count it so that SetState below un-counts it.
    if (pending.record.job().state() == v1::QUEUED) CountQueued(pending.record, +1);
    Batch batch;
    SetState(pending, v1::CANCELLED, reason, batch);
    DYT_RETURN_IF_ERROR(Persist(batch));
    cancelled_before_adopt_.insert(job_id);
    return pending.record;
  }
  LiveJob& job = it->second;
  Batch batch;
  v1::JobState state = job.record.job().state();
  int attempt = job.record.job().attempt();
  Unqueue(job_id);
  bool placed = state == v1::SCHEDULED || state == v1::RUNNING;
  job.record.clear_placement();
  SetState(job, v1::CANCELLED, reason, batch);
  if (placed) StopRanks(job_id, attempt, v1::StopJob::CANCEL);
  v1::JobRecord result = job.record;
  DYT_RETURN_IF_ERROR(Persist(batch));
  logs_.Finish(job_id);
  jobs_.erase(it);
  Kick();
  return result;
}

StatusOr<v1::JobRecord> Scheduler::GetJob(const std::string& job_id) const {
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it != jobs_.end()) return it->second.record;
  }
  return store_->GetJob(job_id);
}

int Scheduler::QueuedJobsOf(const std::string& owner) const {
  std::lock_guard lock(mu_);
  auto it = queued_by_owner_.find(owner);
  return it == queued_by_owner_.end() ? 0 : it->second;
}

void Scheduler::CountQueued(const v1::JobRecord& record, int delta) {
  const std::string& owner = record.job().spec().owner();
  int& n = queued_by_owner_[owner];
  n += delta;
  if (n <= 0) queued_by_owner_.erase(owner);
}

bool Scheduler::IsCurrentAttempt(const std::string& job_id, int attempt) const {
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && it->second.record.job().attempt() == attempt &&
         (it->second.record.job().state() == v1::SCHEDULED ||
          it->second.record.job().state() == v1::RUNNING);
}

void Scheduler::UpdateGauges() {
  if (metrics_ == nullptr) return;
  metrics_->SetQueueDepth(double(queue_.size() + held_.size()));
  int connected = 0, draining = 0, shut_down = 0;
  // Slots of connected workers, drained ones included, so that allocated <= total and the
  // dashboard's utilisation stays a ratio while a drained worker finishes its jobs.
  std::map<std::string, int> total = {{"cpu", 0}, {"gpu", 0}}, allocated = total;
  for (const auto& [id, worker] : workers_) {
    draining += worker.record.draining();
    if (worker.session == nullptr) {
      shut_down += worker.shutting_down;
      continue;
    }
    ++connected;
    total[worker.record.slot_kind()] += worker.record.slots();
    allocated[worker.record.slot_kind()] += worker.record.slots() - cluster_.free_slots(id);
  }
  metrics_->SetWorkers(connected, double(workers_.size()) - connected - shut_down, shut_down);
  metrics_->SetWorkersDraining(draining);
  for (const char* kind : {"cpu", "gpu"}) metrics_->SetSlots(kind, total[kind], allocated[kind]);
  // A walk over the live jobs: once a second is enough for a gauge scraped every 15 s.
  const auto now = std::chrono::steady_clock::now();
  if (now - oldest_queued_updated_ < std::chrono::seconds(1)) return;
  oldest_queued_updated_ = now;
  std::map<std::string, double> oldest = {{"cpu", 0.0}, {"gpu", 0.0}};
  for (const auto& [id, job] : jobs_) {
    if (job.record.job().state() != v1::QUEUED) continue;
    const std::string& kind = job.record.job().spec().resources().kind();
    double& o = oldest[kind.empty() ? "cpu" : kind];  // as placement reads an empty kind
    o = std::max(o, std::chrono::duration<double>(now - job.queued_at).count());
  }
  for (const auto& [kind, seconds] : oldest) metrics_->SetOldestQueued(kind, seconds);
}

}  // namespace dyt
