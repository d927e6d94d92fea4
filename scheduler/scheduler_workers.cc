// Scheduler: worker sessions, heartbeats, rank updates and rendezvous (checkpoints:
// scheduler_checkpoints.cc).
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "common/reason_rules.h"
#include "common/worker_id.h"
#include "scheduler/job_states.h"
#include "scheduler/scheduler.h"
#include "scheduler/state_keys.h"
#include "trainer/dist/kv_store.h"

namespace dyt {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxStderrTail = 4096;
constexpr int kTrainerExitBadConfig = 2;  // dyt-train's exit code for an invalid config
constexpr int kTrainerExitStoppedAfterCheckpoint = 3;  // dyt-train: stopped, checkpoint saved
constexpr int kMaxSlots = 1024;
constexpr size_t kMaxRendezvousValue = 64 * 1024;
constexpr int kMaxRendezvousWaitMs = 600000;

Status CheckWorkerId(const std::string& id) {
  if (!IsWorkerId(id)) {
    return InvalidArgument("worker_id: must be " + std::string(kWorkerIdRule) + " (got '" +
                           id.substr(0, 80) + "')");
  }
  return Status::Ok();
}

// The trainers' KvStore key rules (trainer/dist/kv_store.h), so every store accepts the same keys.
Status CheckRendezvousKey(const std::string& key) {
  Status valid = dist::ValidateKvKey(key);
  if (!valid.ok()) return InvalidArgument("key: " + valid.message());
  return Status::Ok();
}

// The report of a rank that ended without its worker telling us (worker lost or restarted).
v1::RankUpdate LostRank(const std::string& job_id, int attempt, int rank,
                        const std::string& reason) {
  v1::RankUpdate update;
  update.set_job_id(job_id);
  update.set_attempt(attempt);
  update.set_rank(rank);
  update.set_kind(v1::RankUpdate::EXITED);
  update.set_exit(v1::RankUpdate::FAILED);
  update.set_reason(reason);
  return update;
}

}  // namespace

StatusOr<std::shared_ptr<WorkerSession>> Scheduler::Register(const v1::RegisterWorker& request) {
  DYT_RETURN_IF_ERROR(CheckWorkerId(request.worker_id()));
  if (request.slot_kind() != "cpu" && request.slot_kind() != "gpu") {
    return InvalidArgument("slot_kind: must be \"cpu\" or \"gpu\" (got \"" + request.slot_kind() +
                           "\")");
  }
  if (request.slots() < 1 || request.slots() > kMaxSlots) {
    return InvalidArgument("slots: must be in [1, " + std::to_string(kMaxSlots) + "] (got " +
                           std::to_string(request.slots()) + ")");
  }
  if (request.hostname().size() > 255) return InvalidArgument("hostname: at most 255 characters");
  if (request.memory_bytes() < 0) return InvalidArgument("memory_bytes: must be >= 0");
  if (request.device_name().size() > 255) {
    return InvalidArgument("device_name: at most 255 characters");
  }
  // Both are logged and shown in `dytctl workers`: no forged log lines, no terminal escapes.
  if (!ReasonRule(request.hostname(), /*multiline=*/false).empty()) {
    return InvalidArgument("hostname: one line of text, without control characters");
  }
  if (!ReasonRule(request.device_name(), /*multiline=*/false).empty()) {
    return InvalidArgument("device_name: one line of text, without control characters");
  }
  if (request.labels_size() > 64) return InvalidArgument("labels: at most 64 entries");
  for (const auto& [key, value] : request.labels()) {
    bool ok = !key.empty() && key.size() <= 63 && value.size() <= 255;
    for (char c : key) {
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
                  c == '/');
    }
    for (char c : value) ok = ok && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
    if (!ok) {
      return InvalidArgument(
          "labels: keys 1-63 characters of [A-Za-z0-9._/-], values at most "
          "255 printable characters");
    }
  }

  std::lock_guard lock(mu_);
  auto [it, inserted] = workers_.try_emplace(request.worker_id());
  Worker& worker = it->second;
  // Another process under the same id while this one lives (heartbeats): refused, not swapped
  // in (the two would replace each other's session and stop each other's trainers).
  const auto silent = std::chrono::steady_clock::now() - worker.last_heartbeat;
  if (worker.session && !worker.session->closed() && !worker.instance_id.empty() &&
      !request.instance_id().empty() && request.instance_id() != worker.instance_id &&
      silent < 3 * options_.heartbeat_interval) {
    return Status(
        StatusCode::kAlreadyExists,
        "worker_id: " + request.worker_id() + " is registered by another live dyt-worker (host " +
            worker.record.hostname() + ", last heartbeat " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) +
            " ms ago); give each worker its own --worker-id");
  }
  if (worker.session) worker.session->Close();  // a reconnect replaces the old session
  // A changed slot count or kind: keep allocations that still fit, else refuse.
  Status added = cluster_.AddWorker(request.worker_id(), request.slot_kind(), request.slots());
  if (!added.ok()) {
    return FailedPrecondition(added.message());  // it names the worker
  }
  worker.instance_id = request.instance_id();
  // A drained worker stays drained across its restarts (and the scheduler's); one that is
  // shutting down takes nothing until it registers as a fresh process.
  worker.shutting_down = request.shutting_down();
  cluster_.SetSchedulable(request.worker_id(), !worker.record.draining() && !worker.shutting_down);
  ReleaseHeld();  // more capacity: held jobs may fit now
  v1::WorkerRecord& record = worker.record;
  record.set_shut_down(request.shutting_down());
  record.set_id(request.worker_id());
  record.set_hostname(request.hostname());
  record.set_slot_kind(request.slot_kind());
  record.set_slots(request.slots());
  record.set_memory_bytes(request.memory_bytes());
  *record.mutable_labels() = request.labels();
  auto now = TimeUtil::GetCurrentTime();
  if (inserted) *record.mutable_registered() = now;
  *record.mutable_last_heartbeat() = now;
  if (!request.device_name().empty()) (*record.mutable_labels())["device"] = request.device_name();
  DYT_RETURN_IF_ERROR(store_->PutWorker(record));

  worker.session = std::make_shared<WorkerSession>(request.worker_id());
  worker.last_heartbeat = std::chrono::steady_clock::now();
  v1::SchedulerMessage hello;
  v1::Registered* registered = hello.mutable_registered();
  registered->set_worker_id(request.worker_id());
  registered->set_heartbeat_interval_ms(static_cast<int32_t>(options_.heartbeat_interval.count()));
  registered->set_artifact_root(options_.artifact_root);
  worker.session->Push(std::move(hello));

  Batch batch;
  std::vector<v1::RunningRank> running(request.running().begin(), request.running().end());
  ReconcileRunning(worker, running, batch);
  Status persisted = Persist(batch);
  if (!persisted.ok()) return persisted;
  spdlog::info("worker {} registered: {} {} slots on {}", request.worker_id(), request.slots(),
               request.slot_kind(), request.hostname());
  UpdateGauges();
  Kick();
  return worker.session;
}

// What the worker runs versus what we think it runs:
//  * ranks it runs that are not a live rank of ours on it: stop them (STALE);
//  * live ranks of ours on it that it does not run: they died with the worker's previous life,
//    so they exited with a failure.
void Scheduler::ReconcileRunning(Worker& worker, const std::vector<v1::RunningRank>& running,
                                 Batch& batch) {
  const std::string& worker_id = worker.record.id();
  std::set<std::tuple<std::string, int, int>> reported;
  // Ranks it runs that the scheduler had given up on (the worker was lost, its jobs requeued):
  // their ranks and the slots they hold, per (job, attempt).
  std::map<std::pair<std::string, int>, std::pair<std::set<int>, std::set<int>>> stale;
  // Known ranks of jobs being stopped (a preemption, a time limit): the stop sent while this
  // worker had no session was dropped, so it goes again now.
  std::set<std::pair<std::string, int>> stopping;
  for (const auto& r : running) {
    reported.emplace(r.job_id(), r.attempt(), r.rank());
    auto it = attempts_.find(AttemptKey(r.job_id(), r.attempt()));
    bool known = it != attempts_.end() && it->second.live_ranks.count(worker_id) > 0 &&
                 it->second.live_ranks.at(worker_id).count(r.rank()) > 0;
    if (known) {
      auto job = jobs_.find(r.job_id());
      if (job != jobs_.end() && job->second.preempting &&
          IsCurrentAttempt(r.job_id(), r.attempt())) {
        stopping.emplace(r.job_id(), r.attempt());
      }
      continue;
    }
    auto& [ranks, slots] = stale[{r.job_id(), r.attempt()}];
    ranks.insert(r.rank());
    slots.insert(r.slots().begin(), r.slots().end());
  }
  for (const auto& [job_id, attempt] : stopping) {
    SendStop(worker_id, job_id, attempt, v1::StopJob::PREEMPT);
  }
  for (const auto& [attempt_id, held] : stale) {
    const auto& [job_id, attempt] = attempt_id;
    SendStop(worker_id, job_id, attempt, v1::StopJob::STALE);
    // Their slots stay taken until they have exited (RankExited frees them), or a new attempt
    // placed there would be refused by the worker ("slot 0 is already in use") and fail.
    const auto& [ranks, slots] = held;
    if (slots.empty()) continue;
    const std::string key = AttemptKey(job_id, attempt);
    v1::RankPlacement hold;
    hold.set_rank(*ranks.begin());
    hold.set_worker_id(worker_id);
    for (int slot : slots) hold.add_slots(slot);
    if (Status s = cluster_.Allocate(key, Placement{hold}); !s.ok()) {
      spdlog::warn("worker {}: cannot hold the slots of stale {}: {}", worker_id, key,
                   s.ToString());
      continue;
    }
    Attempt& a = attempts_[key];
    a.job_id = job_id;
    a.attempt = attempt;
    a.live_ranks[worker_id].insert(ranks.begin(), ranks.end());
  }
  std::vector<v1::RankUpdate> lost;
  std::set<std::string> resend;
  for (const auto& [key, attempt] : attempts_) {
    auto ranks = attempt.live_ranks.find(worker_id);
    if (ranks == attempt.live_ranks.end()) continue;
    for (int rank : ranks->second) {
      if (reported.count({attempt.job_id, attempt.attempt, rank}) > 0) continue;
      // Placed but never started here: the assignment may have been lost with the old
      // session, so send it again rather than count a failure.
      if (IsCurrentAttempt(attempt.job_id, attempt.attempt)) {
        const LiveJob& job = jobs_.at(attempt.job_id);
        auto r = job.ranks.find(rank);
        if (job.record.job().state() == v1::SCHEDULED && r != job.ranks.end() &&
            !r->second.started) {
          if (job.preempting) {
            // Being preempted before it began: it is stopped already, not to be started now.
            v1::RankUpdate never = LostRank(attempt.job_id, attempt.attempt, rank,
                                            "never started (preempted before it began)");
            never.set_exit(v1::RankUpdate::STOPPED);
            lost.push_back(never);
          } else {
            resend.insert(attempt.job_id);
          }
          continue;
        }
      }
      lost.push_back(LostRank(attempt.job_id, attempt.attempt, rank,
                              "worker " + worker_id + " no longer runs it (the worker restarted)"));
    }
  }
  for (const auto& job_id : resend) {
    v1::SchedulerMessage message;
    *message.mutable_assign() = MakeAssignment(jobs_.at(job_id), worker_id);
    pending_sends_.emplace_back(worker_id, std::move(message));
  }
  for (const auto& update : lost) RankExited(worker_id, update, batch);
}

Status Scheduler::OnWorkerMessage(const std::shared_ptr<WorkerSession>& session,
                                  const v1::WorkerMessage& message) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(session->worker_id());
  if (it == workers_.end() || it->second.session != session) {
    return FailedPrecondition("worker " + session->worker_id() +
                              ": session replaced by a newer registration");
  }
  Worker& worker = it->second;
  worker.last_heartbeat = std::chrono::steady_clock::now();
  Batch batch;
  Status status = Status::Ok();
  switch (message.kind_case()) {
    case v1::WorkerMessage::kHeartbeat:
      break;
    case v1::WorkerMessage::kUpdate:
      status = OnUpdate(worker.record.id(), message.update(), batch);
      break;
    case v1::WorkerMessage::kLogs: {
      const v1::LogBatch& logs = message.logs();
      // Also the last lines of a job that just ended (a cancelled trainer's shutdown lines):
      // RanOn remembers ranks that exited lately.
      if (!RanOn(worker.record.id(), logs.job_id(), logs.attempt(), logs.rank())) {
        status = NotItsRank(worker.record.id(), "logs", logs.job_id(), logs.attempt(), logs.rank());
        break;
      }
      std::vector<std::string> lines(logs.lines().begin(), logs.lines().end());
      logs_.Append(logs.job_id(), logs.attempt(), logs.rank(), lines, logs.first_line());
      break;
    }
    case v1::WorkerMessage::kCheckpoint:
      status = OnCheckpoint(worker.record.id(), message.checkpoint().checkpoint(), batch);
      break;
    case v1::WorkerMessage::kShuttingDown: {
      // No new work until it registers again; its jobs stop as preempted, not failed.
      const std::string& id = worker.record.id();
      worker.shutting_down = true;
      worker.record.set_shut_down(true);
      if (Status put = store_->PutWorker(worker.record); !put.ok()) {
        spdlog::warn("worker {}: {}", id, put.ToString());  // only the gauge would be wrong
      }
      cluster_.SetSchedulable(id, false);
      const std::string why = message.shutting_down().reason().empty()
                                  ? "worker " + id + " shut down"
                                  : "worker " + id + " shut down (" +
                                        message.shutting_down().reason().substr(0, 200) + ")";
      spdlog::info("{}: its jobs are requeued without a restart counted", why);
      PreemptJobsOn(id, why, batch);
      break;
    }
    case v1::WorkerMessage::kRegister:
      status = FailedPrecondition("register: only the first message of a session");
      break;
    default:
      status = InvalidArgument("message: empty");
  }
  DYT_RETURN_IF_ERROR(Persist(batch));
  return status;
}

void Scheduler::Disconnected(const std::shared_ptr<WorkerSession>& session) {
  session->Close();
  std::lock_guard lock(mu_);
  auto it = workers_.find(session->worker_id());
  if (it == workers_.end() || it->second.session != session) return;
  it->second.session.reset();
  cluster_.SetSchedulable(session->worker_id(), false);
  spdlog::info("worker {} disconnected", session->worker_id());
  UpdateGauges();
}

void Scheduler::CheckHeartbeats(Batch& batch) {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> lost;
  for (const auto& [id, worker] : workers_) {
    if (now - worker.last_heartbeat > options_.heartbeat_timeout && cluster_.HasWorker(id)) {
      lost.push_back(id);
    }
  }
  for (const auto& id : lost) {
    LoseWorker(id,
               "worker " + id + " missed heartbeats for " +
                   std::to_string(options_.heartbeat_timeout.count() / 1000.0).substr(0, 4) + " s",
               batch);
  }
}

void Scheduler::LoseWorker(const std::string& worker_id, const std::string& why, Batch& batch) {
  Worker& worker = workers_[worker_id];
  if (worker.shutting_down) {
    // It said it was leaving: gone as announced, not lost.
    spdlog::info("worker {} has shut down", worker_id);
  } else {
    spdlog::warn("{}: its jobs are requeued", why);
    if (metrics_ != nullptr) metrics_->WorkerLost();
  }
  if (worker.session) {
    worker.session->Close();
    worker.session.reset();
  }
  // Every live rank on it is gone: treat each as a failed exit.
  std::vector<v1::RankUpdate> gone;
  for (const auto& [key, attempt] : attempts_) {
    auto ranks = attempt.live_ranks.find(worker_id);
    if (ranks == attempt.live_ranks.end()) continue;
    for (int rank : ranks->second) {
      gone.push_back(LostRank(attempt.job_id, attempt.attempt, rank, why));
    }
  }
  for (const auto& update : gone) RankExited(worker_id, update, batch);
  cluster_.RemoveWorker(worker_id);
  Kick();
}

bool Scheduler::RanOn(const std::string& worker_id, const std::string& job_id, int attempt,
                      int rank) const {
  const std::string key = AttemptKey(job_id, attempt);
  auto live = attempts_.find(key);
  if (live != attempts_.end()) {
    auto ranks = live->second.live_ranks.find(worker_id);
    if (ranks != live->second.live_ranks.end() &&
        (rank < 0 ? !ranks->second.empty() : ranks->second.count(rank) > 0)) {
      return true;
    }
  }
  auto job = jobs_.find(job_id);
  if (job != jobs_.end() && job->second.record.job().attempt() == attempt) {
    for (const auto& placed : job->second.record.placement()) {
      if (placed.worker_id() == worker_id && (rank < 0 || placed.rank() == rank)) return true;
    }
  }
  auto worker = workers_.find(worker_id);
  if (worker == workers_.end()) return false;
  const std::string prefix = key + "/";
  return std::any_of(worker->second.recent_ranks.begin(), worker->second.recent_ranks.end(),
                     [&](const std::string& recent) {
                       return rank < 0 ? recent.rfind(prefix, 0) == 0
                                       : recent == prefix + std::to_string(rank);
                     });
}

Status Scheduler::NotItsRank(const std::string& worker_id, const std::string& what,
                             const std::string& job_id, int attempt, int rank) const {
  const std::string ranks = rank < 0 ? "" : "rank " + std::to_string(rank) + " of ";
  return PermissionDenied(what + " for " + ranks + "job " + job_id + " attempt " +
                          std::to_string(attempt) + ", which worker " + worker_id +
                          " does not run: ignored");
}

Status Scheduler::OnUpdate(const std::string& worker_id, const v1::RankUpdate& update,
                           Batch& batch) {
  if (!RanOn(worker_id, update.job_id(), update.attempt(), update.rank())) {
    return NotItsRank(worker_id, "an update", update.job_id(), update.attempt(), update.rank());
  }
  switch (update.kind()) {
    case v1::RankUpdate::STARTED: {
      if (!IsCurrentAttempt(update.job_id(), update.attempt())) return Status::Ok();
      LiveJob& job = jobs_.at(update.job_id());
      job.ranks[update.rank()].started = true;
      bool all = std::all_of(job.ranks.begin(), job.ranks.end(),
                             [](const auto& r) { return r.second.started; });
      if (all && job.record.job().state() == v1::SCHEDULED) {
        SetState(job, v1::RUNNING, "every rank started", batch);
      }
      return Status::Ok();
    }
    case v1::RankUpdate::PROGRESS: {
      if (!IsCurrentAttempt(update.job_id(), update.attempt())) return Status::Ok();
      LiveJob& job = jobs_.at(update.job_id());
      v1::Progress* progress = job.record.mutable_job()->mutable_progress();
      // An eval carries only val_loss: keep the other fields.
      double val_loss =
          update.progress().val_loss() != 0 ? update.progress().val_loss() : progress->val_loss();
      if (update.progress().step() > 0 || update.progress().loss() != 0) {
        *progress = update.progress();
      }
      progress->set_val_loss(val_loss);
      *job.record.mutable_job()->mutable_updated() = TimeUtil::GetCurrentTime();
      job.progress_dirty = true;
      Changed();
      return Status::Ok();
    }
    case v1::RankUpdate::EXITED:
      RankExited(worker_id, update, batch);
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

void Scheduler::RememberExit(const std::string& worker_id, const std::string& rank_key) {
  auto worker = workers_.find(worker_id);
  if (worker == workers_.end()) return;
  // Enough for every rank of a worker's slots to end at once, bounded for a worker that lives
  // for years.
  constexpr size_t kRecentRanks = 1024;
  auto& recent = worker->second.recent_ranks;
  recent.push_back(rank_key);
  while (recent.size() > kRecentRanks) recent.pop_front();
}

void Scheduler::RankExited(const std::string& worker_id, const v1::RankUpdate& update,
                           Batch& batch) {
  const std::string key = AttemptKey(update.job_id(), update.attempt());
  auto attempt = attempts_.find(key);
  bool held = false;  // the rank ran on that worker (it was not yet reported gone)
  if (attempt != attempts_.end()) {
    auto ranks = attempt->second.live_ranks.find(worker_id);
    if (ranks != attempt->second.live_ranks.end()) {
      held = ranks->second.erase(update.rank()) > 0;
      if (held) RememberExit(worker_id, key + "/" + std::to_string(update.rank()));
      if (ranks->second.empty()) {
        cluster_.ReleaseOnWorker(key, worker_id);
        attempt->second.live_ranks.erase(ranks);
        Kick();
      }
    }
    if (attempt->second.live_ranks.empty()) attempts_.erase(attempt);
  }
  if (!IsCurrentAttempt(update.job_id(), update.attempt())) {
    if (held) KeepFinalProgress(update);
    return;
  }
  LiveJob& job = jobs_.at(update.job_id());
  if (update.has_progress() && update.progress().step() > 0) {
    *job.record.mutable_job()->mutable_progress() = update.progress();
  }
  RankState& rank = job.ranks[update.rank()];
  rank.exited = true;
  rank.exit = update.exit();
  rank.reason = update.reason();
  rank.stopped_by_worker = update.stopped_by_worker();
  // A rank of a job being preempted may stop on its own before its worker's stop request
  // arrives (its trainer follows the peer that was stopped, checkpoints and exits 3): its worker
  // did not ask, so it says FAILED, but it is the requested stop all the same.
  // So may a rank whose peer on another worker was stopped by its worker (that worker lost the
  // scheduler first): whether the attempt failed is decided once every rank has said how it
  // ended, below.
  const bool stopped_with_peers = update.exit_code() == kTrainerExitStoppedAfterCheckpoint;
  if (update.exit() == v1::RankUpdate::FAILED && !stopped_with_peers) {
    std::string reason = "rank " + std::to_string(update.rank()) + " on " + worker_id + ": " +
                         (update.reason().empty() ? "failed" : update.reason());
    if (update.stderr_tail().find_first_not_of(" \t\r\n") != std::string::npos) {
      std::string tail = update.stderr_tail();
      if (tail.size() > kMaxStderrTail) tail = tail.substr(tail.size() - kMaxStderrTail);
      reason += "\n--- stderr tail ---\n" + tail;
    }
    // Exit code 2: the trainer refused its configuration (or the checkpoint it was to resume);
    // the next attempt would be refused the same way, so no restart is spent on it.
    if (update.exit_code() == kTrainerExitBadConfig) {
      EndAttempt(job, OnFirstLine(reason, "; exit code 2 is a configuration error: not retried"),
                 /*failure=*/true, batch, /*retryable=*/false);
      return;
    }
    EndAttempt(job, reason, /*failure=*/true, batch);
    return;
  }
  bool all_exited = std::all_of(job.ranks.begin(), job.ranks.end(),
                                [](const auto& r) { return r.second.exited; });
  if (!all_exited) return;
  bool all_succeeded = std::all_of(job.ranks.begin(), job.ranks.end(), [](const auto& r) {
    return r.second.exit == v1::RankUpdate::SUCCEEDED;
  });
  if (all_succeeded) {
    Status cleared = store_->DeleteRendezvousAttempt(update.job_id(), update.attempt());
    if (!cleared.ok()) spdlog::warn("job {}: {}", update.job_id(), cleared.ToString());
    Finish(job, v1::SUCCEEDED, "every rank finished", batch);
    return;
  }
  // Stopped on our request (preemption): requeue without counting a restart. Any other stop
  // we did not ask for is a failure.
  if (job.preempting) {
    EndAttempt(job,
               job.record.preemption().empty() ? std::string("preempted") : job.record.preemption(),
               /*failure=*/false, batch);
    return;
  }
  // Say how: the first stopped rank's reason from its worker. Stops of the cluster's making
  // (the scheduler was unreachable, the worker shut down) spend none of the job's restarts:
  // a scheduler outage used up max_restarts of every job it outlasted.
  // The ranks that stopped after a checkpoint without their worker asking followed a peer
  // (StopAgreed); one rank stopped by its worker makes it the cluster's doing.
  std::string how;
  bool by_workers = false;
  for (const auto& [r, state] : job.ranks) {
    if (state.exit == v1::RankUpdate::STOPPED && state.stopped_by_worker && !by_workers) {
      by_workers = true;
      how = "rank " + std::to_string(r) + ": " + state.reason;
    }
    if (how.empty() && !state.reason.empty()) {
      how = "rank " + std::to_string(r) + ": " + state.reason;
    }
  }
  if (by_workers) {
    EndAttempt(job,
               "stopped by its worker, not the job's fault" + (how.empty() ? "" : " (" + how + ")"),
               /*failure=*/false, batch);
  } else {
    EndAttempt(job, "ranks stopped without a request" + (how.empty() ? "" : " (" + how + ")"),
               /*failure=*/true, batch);
  }
}

std::vector<v1::WorkerStatus> Scheduler::ListWorkers() const {
  std::lock_guard lock(mu_);
  // One pass over the attempts, not one per worker.
  std::map<std::string, std::set<std::string>> jobs_on;
  for (const auto& [key, attempt] : attempts_) {
    for (const auto& [worker_id, ranks] : attempt.live_ranks) {
      if (!ranks.empty()) jobs_on[worker_id].insert(attempt.job_id);
    }
  }
  std::vector<v1::WorkerStatus> out;
  for (const auto& [id, worker] : workers_) {
    const auto& jobs = jobs_on[id];
    out.push_back(StatusOf(id, worker, {jobs.begin(), jobs.end()}));
  }
  return out;
}

std::vector<std::string> Scheduler::JobsOn(const std::string& worker_id) const {
  std::set<std::string> jobs;
  for (const auto& [key, attempt] : attempts_) {
    auto ranks = attempt.live_ranks.find(worker_id);
    if (ranks != attempt.live_ranks.end() && !ranks->second.empty()) jobs.insert(attempt.job_id);
  }
  return {jobs.begin(), jobs.end()};
}

v1::WorkerStatus Scheduler::StatusOf(const std::string& id, const Worker& worker,
                                     const std::vector<std::string>& jobs) const {
  v1::WorkerStatus status;
  status.set_id(id);
  status.set_hostname(worker.record.hostname());
  status.set_slot_kind(worker.record.slot_kind());
  status.set_slots(worker.record.slots());
  status.set_slots_busy(worker.record.slots() - cluster_.free_slots(id));
  if (!cluster_.HasWorker(id)) status.set_slots_busy(0);
  status.set_connected(worker.session != nullptr);
  auto ago = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - worker.last_heartbeat);
  *status.mutable_last_heartbeat() =
      TimeUtil::GetCurrentTime() - TimeUtil::MillisecondsToDuration(ago.count());
  status.set_memory_bytes(worker.record.memory_bytes());
  auto device = worker.record.labels().find("device");
  if (device != worker.record.labels().end()) status.set_device_name(device->second);
  for (const auto& job : jobs) status.add_job_ids(job);
  status.set_draining(worker.record.draining());
  status.set_drain_reason(worker.record.drain_reason());
  if (worker.record.has_drain_since()) *status.mutable_drain_since() = worker.record.drain_since();
  return status;
}

void Scheduler::KeepFinalProgress(const v1::RankUpdate& update) {
  if (!update.has_progress() || update.progress().step() <= 0) return;
  if (jobs_.count(update.job_id()) > 0) return;  // still live: a later attempt reports
  StatusOr<v1::JobRecord> stored = store_->GetJob(update.job_id());
  if (!stored.ok()) return;
  v1::Job& job = *stored->mutable_job();
  if (!IsTerminalJobState(job.state()) || job.attempt() != update.attempt() ||
      update.progress().step() <= job.progress().step()) {
    return;
  }
  const double val_loss =
      update.progress().val_loss() != 0 ? update.progress().val_loss() : job.progress().val_loss();
  *job.mutable_progress() = update.progress();
  job.mutable_progress()->set_val_loss(val_loss);
  if (Status s = store_->PutJob(*stored); !s.ok()) {
    spdlog::warn("job {}: keeping the step its ranks stopped at: {}", update.job_id(),
                 s.ToString());
    return;
  }
  Changed();
}

Status Scheduler::SetRendezvous(const v1::SetRendezvousRequest& request) {
  DYT_RETURN_IF_ERROR(CheckRendezvousKey(request.key()));
  if (request.value().size() > kMaxRendezvousValue) {
    return InvalidArgument("value: at most " + std::to_string(kMaxRendezvousValue) + " bytes");
  }
  {
    std::lock_guard lock(mu_);
    if (!IsCurrentAttempt(request.job_id(), request.attempt())) {
      return FailedPrecondition("job " + request.job_id() + " attempt " +
                                std::to_string(request.attempt()) +
                                ": not a running attempt (stale or finished)");
    }
  }
  DYT_RETURN_IF_ERROR(
      store_->SetRendezvous(request.job_id(), request.attempt(), request.key(), request.value()));
  {
    std::lock_guard lock(rdzv_mu_);
    ++rdzv_version_;
  }
  rdzv_cv_.notify_all();
  return Status::Ok();
}

StatusOr<std::string> Scheduler::GetRendezvous(const v1::GetRendezvousRequest& request) {
  DYT_RETURN_IF_ERROR(CheckRendezvousKey(request.key()));
  if (request.timeout_ms() < 0 || request.timeout_ms() > kMaxRendezvousWaitMs) {
    return InvalidArgument("timeout_ms: must be in [0, " + std::to_string(kMaxRendezvousWaitMs) +
                           "]");
  }
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(request.timeout_ms());
  while (true) {
    uint64_t seen;
    {
      std::lock_guard lock(rdzv_mu_);
      seen = rdzv_version_;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Unavailable("scheduler is shutting down");
      if (!IsCurrentAttempt(request.job_id(), request.attempt())) {
        return FailedPrecondition("job " + request.job_id() + " attempt " +
                                  std::to_string(request.attempt()) +
                                  ": not a running attempt (stale or finished)");
      }
    }
    auto value = store_->GetRendezvous(request.job_id(), request.attempt(), request.key());
    if (value.ok()) return value->value();
    if (value.status().code() != StatusCode::kNotFound) return value.status();
    std::unique_lock lock(rdzv_mu_);
    // Wake on any Set, and at least every 500 ms to notice a stopped attempt.
    auto wake =
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
    rdzv_cv_.wait_until(lock, wake, [&] { return rdzv_version_ != seen; });
    if (rdzv_version_ == seen && std::chrono::steady_clock::now() >= deadline) {
      return Status(StatusCode::kDeadlineExceeded,
                    "rendezvous key " + request.key() + " of job " + request.job_id() +
                        " attempt " + std::to_string(request.attempt()) + ": not set within " +
                        std::to_string(request.timeout_ms()) + " ms");
    }
  }
}

}  // namespace dyt
