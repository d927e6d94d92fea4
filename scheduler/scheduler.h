// Scheduler: the live state of dyt-scheduler — the queue, the workers and their slots, and every
// job state change after submission (docs/scheduler.md, "Scheduling").
//
// Jobs: QUEUED -> SCHEDULED (placed; assignments sent) -> RUNNING (every rank started) ->
// SUCCEEDED (every rank exited 0). A failed rank or a lost worker ends the attempt: the job goes
// RESTARTING -> QUEUED with attempt+1 and resumes from its latest checkpoint, until it has been
// restarted spec.max_restarts times; then FAILED with the reason. A preempted job goes PREEMPTED
// -> QUEUED once its ranks have checkpointed and exited (no restart is counted). CancelJob moves
// any unfinished job to CANCELLED at once and tells the workers to stop its ranks.
//
// Durability: every state change is written to the StateStore (synced) before anyone hears of
// it: an assignment is sent only after the SCHEDULED record is durable, and an RPC answers only
// after its change is. Progress (step, loss) is kept in memory and written with the next state
// change or checkpoint, or by the periodic flush. After a restart, Start() reloads every
// unfinished job; SCHEDULED and RUNNING jobs keep their placement while their workers reconnect
// (a worker that reports the job's ranks keeps running them); a worker that does not reconnect
// within the heartbeat timeout is lost like any other.
//
// Slots: an attempt's slots stay allocated until its ranks have reported that they exited (or
// their worker is lost), so a requeued job never lands on slots its previous attempt still uses.
//
// Threads: every public method may be called from any thread (gRPC handlers). One internal
// thread runs scheduling passes (on a change, and at least every 200 ms) and the heartbeat
// checks. Store writes of a scheduling pass are one batch: one fsync for all its placements.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "dyt/v1/job_service.pb.h"
#include "dyt/v1/scheduler_state.pb.h"
#include "dyt/v1/worker_service.pb.h"
#include "scheduler/job_logs.h"
#include "scheduler/placement.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/state_store.h"
#include "scheduler/worker_session.h"

namespace dyt {

struct SchedulerOptions {
  std::chrono::milliseconds heartbeat_interval{1000};
  // A worker silent for this long is lost: its jobs are requeued.
  std::chrono::milliseconds heartbeat_timeout{10000};
  // A failed job's restart waits this long, doubled at each restart of the job, at most
  // kMaxRestartBackoff: a transient fault (a storage blip) does not use up max_restarts in a
  // second. 0: restart at once. (dyt-scheduler --restart-backoff-s defaults to 5 s.)
  std::chrono::milliseconds restart_backoff{0};
  // Sent with stop requests: how long a worker waits after SIGTERM before SIGKILL.
  std::chrono::milliseconds stop_grace{30000};
  // A preempting job whose ranks still run this long after its stop request gets it again (a
  // request to a worker without a session, or lost in a scheduler crash, is not delivered).
  std::chrono::milliseconds stop_resend{10000};
  // A higher-priority job that cannot fit may preempt lower-priority running jobs.
  bool preemption = true;
  // Off (default): the first job of a slot kind that cannot be placed blocks the jobs behind it
  // of that kind (no starvation of big jobs). On: later jobs that fit go ahead of it.
  bool backfill = false;
  // Shared storage where every job's checkpoints go (<artifact_root>/<job id>).
  std::string artifact_root;
  // HOST:PORT of this scheduler's WorkerService as the trainers reach it (rendezvous).
  std::string advertise_address;
  // --data-root: sent with every assignment, so that the trainers themselves refuse data files
  // outside them (the submit-time check cannot see what a glob pattern or a symlink on the
  // worker's file system will name).
  std::vector<std::string> data_roots;
  // How often in-memory progress is written to the store.
  std::chrono::milliseconds progress_flush{5000};
};

class Scheduler {
 public:
  // `store` (and `metrics`, when given) must outlive the scheduler.
  Scheduler(StateStore* store, SchedulerOptions options, SchedulerMetrics* metrics = nullptr);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Reloads the unfinished jobs and the workers from the store and starts the scheduling thread.
  Status Start();
  // Stops the thread and closes every worker session. Jobs keep their state on disk.
  void Stop();

  const SchedulerOptions& options() const { return options_; }
  // Sets options().advertise_address; only before Start (the binary learns its port late).
  void SetAdvertiseAddress(const std::string& address) { options_.advertise_address = address; }
  JobLogs& logs() { return logs_; }

  // ----- Jobs (JobService).
  // Stores the job (durably; idempotent on record.client_request_id, see
  // StateStore::CreateJob) and queues it.
  StatusOr<CreateJobResult> Submit(v1::JobRecord record, const v1::JobEvent& event);
  // Submit for many jobs, stored in one batch (SubmitBatcher); result i is jobs[i]'s.
  std::vector<StatusOr<CreateJobResult>> SubmitMany(std::vector<StateStore::NewJob> jobs);
  // CANCELLED now; FAILED_PRECONDITION for a finished job, NOT_FOUND for an unknown one.
  StatusOr<v1::JobRecord> Cancel(const std::string& job_id, const std::string& reason);
  // The job as it is now: the live record (fresh progress) when unfinished, else the store's.
  StatusOr<v1::JobRecord> GetJob(const std::string& job_id) const;
  // A number that changes whenever any job changes (state, progress, checkpoint). Waits up to
  // `timeout` for it to differ from `seen` and returns it.
  uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const;
  // How many jobs of `owner` (spec.owner) are QUEUED now.
  int QueuedJobsOf(const std::string& owner) const;
  // What a job of `spec` submitted now would meet, in words (SubmitJob's validate_only): "would
  // be held: ..." (no registered workers could ever fit it), "would start now on w1, w2", or
  // "would wait: ..." naming the free slots and the queued jobs that go first. A snapshot:
  // the cluster may change before a real submission.
  std::string PlacementPreview(const v1::JobSpec& spec) const;
  uint64_t version() const;

  // ----- Workers (WorkerService).
  // Registers (or re-registers) a worker and reconciles what it reports running. Returns its
  // session, which already holds the `registered` answer. INVALID_ARGUMENT naming the field for
  // a bad registration.
  StatusOr<std::shared_ptr<WorkerSession>> Register(const v1::RegisterWorker& request);
  // A message from a registered worker's session (heartbeat, update, logs, checkpoint). Errors
  // are the worker's (INVALID_ARGUMENT naming the field); the session may go on.
  Status OnWorkerMessage(const std::shared_ptr<WorkerSession>& session,
                         const v1::WorkerMessage& message);
  // The session's stream ended. The worker is not lost yet: it has heartbeat_timeout to return.
  void Disconnected(const std::shared_ptr<WorkerSession>& session);
  std::vector<v1::WorkerStatus> ListWorkers() const;
  // Operators (scheduler/scheduler_worker_admin.cc). DrainWorker(drain=true): no new work goes
  // to the worker, now and after restarts, until DrainWorker(drain=false); with `preempt`,
  // each job with ranks on it is stopped with a checkpoint and requeued (PREEMPTED; no restart
  // counted), else its jobs run to their end. Idempotent; a second drain keeps drain_since and
  // takes the new reason. The worker as ListWorkers shows it; NOT_FOUND for an unknown worker,
  // INVALID_ARGUMENT naming the field for a bad request.
  StatusOr<v1::WorkerStatus> DrainWorker(const v1::DrainWorkerRequest& request);
  // Forgets a disconnected worker that holds no ranks (durably). FAILED_PRECONDITION saying why
  // for a connected worker or one whose ranks are not yet counted lost; NOT_FOUND for an
  // unknown one.
  Status RemoveWorker(const std::string& worker_id);

  // ----- Checkpoints.
  // Records the complete checkpoints in the job's artifact directory that no worker reported
  // (scheduler/checkpoint_scan.h: one a trainer saved after its worker died), and raises the
  // job's last_checkpoint_step to the newest. Returns how many it added. NOT_FOUND for an
  // unknown job; 0 without an artifact root.
  StatusOr<int> AdoptCheckpointsOnDisk(const std::string& job_id);

  // ----- Rendezvous (only for the current attempt of an unfinished job).
  Status SetRendezvous(const v1::SetRendezvousRequest& request);
  StatusOr<std::string> GetRendezvous(const v1::GetRendezvousRequest& request);

  // Runs one scheduling pass and heartbeat check now (tests; the thread does this by itself).
  void RunPassForTest();

 private:
  struct RankState {
    bool started = false;
    bool exited = false;
    v1::RankUpdate::Exit exit = v1::RankUpdate::EXIT_UNSPECIFIED;
    std::string reason;              // EXITED: its worker's "stopped (...): exited with ..."
    bool stopped_by_worker = false;  // EXITED STOPPED for a cause of the cluster's
  };
  // An unfinished job.
  struct LiveJob {
    v1::JobRecord record;
    uint64_t order = 0;  // submission order (the job number)
    std::chrono::steady_clock::time_point queued_at;
    std::chrono::steady_clock::time_point not_before;  // restart backoff: not placed before
    std::map<int, RankState> ranks;                    // current attempt
    bool preempting = false;  // stop requests sent to make room (record.preemption)
    std::chrono::steady_clock::time_point stop_sent;  // the last such request (CheckStops)
    bool progress_dirty = false;
  };
  // The slots and live ranks of one job attempt, until they have all exited.
  struct Attempt {
    std::string job_id;
    int attempt = 0;
    std::map<std::string, std::set<int>> live_ranks;  // worker id -> ranks not yet exited
  };
  struct Worker {
    v1::WorkerRecord record;
    std::shared_ptr<WorkerSession> session;  // null while disconnected
    bool shutting_down = false;  // said so (ShuttingDown, or in its registration): no new work
    std::string instance_id;     // RegisterWorker.instance_id of the current session
    std::chrono::steady_clock::time_point last_heartbeat;
    // Ranks that exited here lately (AttemptKey + "/" + rank), newest last: their last log
    // lines and checkpoint may still be on the way (RanOn).
    std::deque<std::string> recent_ranks;
  };
  using Batch = std::vector<std::pair<v1::JobRecord, std::optional<v1::JobEvent>>>;

  static std::string AttemptKey(const std::string& job_id, int attempt);
  void Loop();
  void Kick();
  void Changed();  // under mu_: bump the version, wake watchers

  // Under mu_. State changes append to `batch`; Persist writes it (one sync) and then sends
  // the messages queued in `outbox`.
  void SetState(LiveJob& job, v1::JobState state, const std::string& reason, Batch& batch);
  void Adopt(v1::JobRecord record, bool recovered);
  void SchedulePass(Batch& batch);
  // The assignment of the ranks `job`'s current placement puts on `worker_id`.
  v1::Assignment MakeAssignment(const LiveJob& job, const std::string& worker_id) const;
  bool TryPreempt(const LiveJob& head, const GangRequest& request, Batch& batch);
  // Under mu_: stops `job`'s current attempt with a checkpoint for a preemption; its PREEMPTED
  // event will say `event_reason`, its reason meanwhile `state_reason`.
  void StartPreemption(LiveJob& job, const std::string& event_reason,
                       const std::string& state_reason, Batch& batch);
  // Under mu_: stops every job whose current attempt has ranks on `worker_id` with a checkpoint
  // (StopJob PREEMPT to all its workers); each is requeued when its ranks have exited, PREEMPTED
  // with reason "preempted: <why>", no restart counted.
  void PreemptJobsOn(const std::string& worker_id, const std::string& why, Batch& batch);
  void CheckHeartbeats(Batch& batch);
  // Under mu_: stops, with a checkpoint, every RUNNING job whose spec.time_limit_s is used up;
  // sends a preempting job's stop again when its ranks still run options_.stop_resend after it.
  void CheckStops(Batch& batch);
  void LoseWorker(const std::string& worker_id, const std::string& why, Batch& batch);
  // Ends the job's current attempt: requeued (preempted) unless `failure`; a failure restarts
  // it while restarts are left and it is `retryable`, else the job FAILED.
  void EndAttempt(LiveJob& job, const std::string& reason, bool failure, Batch& batch,
                  bool retryable = true);
  void Requeue(LiveJob& job, v1::JobState via, const std::string& reason, Batch& batch);
  void Finish(LiveJob& job, v1::JobState state, const std::string& reason, Batch& batch);
  void StopRanks(const std::string& job_id, int attempt, v1::StopJob::Reason reason);
  void SendStop(const std::string& worker_id, const std::string& job_id, int attempt,
                v1::StopJob::Reason reason);
  void RankExited(const std::string& worker_id, const v1::RankUpdate& update, Batch& batch);
  // A rank of a job that ended while it stopped (cancelled) exited: the stored job's progress
  // moves to the step it reached, its last word on how far the job got.
  void KeepFinalProgress(const v1::RankUpdate& update);
  // PERMISSION_DENIED (and nothing done) when the rank is not the worker's (RanOn).
  Status OnUpdate(const std::string& worker_id, const v1::RankUpdate& update, Batch& batch);
  Status NotItsRank(const std::string& worker_id, const std::string& what,
                    const std::string& job_id, int attempt, int rank) const;
  // Under mu_: adds to the worker's recent_ranks.
  void RememberExit(const std::string& worker_id, const std::string& rank_key);
  Status OnCheckpoint(const std::string& worker_id, const v1::CheckpointRecord& checkpoint,
                      Batch& batch);
  // A checkpoint of a job that is no longer live (ended while its ranks were stopping).
  Status OnLateCheckpoint(const std::string& worker_id, const v1::CheckpointRecord& record);
  // Under mu_: the job's last_checkpoint_step = max(it, step), live or ended.
  Status RaiseLastCheckpointStep(const std::string& job_id, int64_t step);
  // Under mu_: the worker as ListWorkers answers it; `jobs`: those with ranks on it.
  v1::WorkerStatus StatusOf(const std::string& worker_id, const Worker& worker,
                            const std::vector<std::string>& jobs) const;
  // Under mu_: the jobs with ranks on `worker_id` (any attempt not yet exited), sorted.
  std::vector<std::string> JobsOn(const std::string& worker_id) const;
  void ReconcileRunning(Worker& worker, const std::vector<v1::RunningRank>& running, Batch& batch);
  Status Persist(Batch& batch);
  void FlushProgress();
  void UpdateGauges();
  void Unqueue(const std::string& job_id);  // from queue_ or held_
  void ReleaseHeld();
  void CountQueued(const v1::JobRecord& record, int delta);  // queued_by_owner_
  bool IsCurrentAttempt(const std::string& job_id, int attempt) const;
  // Under mu_: whether `worker_id` runs or lately ran rank `rank` (any rank when -1) of that
  // job attempt: a live rank there, a rank the current placement puts there, or one that exited
  // there lately. What a worker says about a job (progress, exits, logs, checkpoints) counts
  // only then: a worker token speaks for its own worker's ranks, not for other workers' jobs.
  bool RanOn(const std::string& worker_id, const std::string& job_id, int attempt, int rank) const;

  StateStore* const store_;
  SchedulerOptions options_;  // advertise_address may be set before Start
  SchedulerMetrics* const metrics_;
  JobLogs logs_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_cv_;  // watchers: version_ changed
  std::condition_variable loop_cv_;             // the loop: work to do
  bool kicked_ = false;
  bool stopping_ = false;
  uint64_t version_ = 0;
  std::unordered_map<std::string, LiveJob> jobs_;
  JobQueue queue_;
  // Jobs that cannot fit even an idle cluster as registered now. Kept out of queue_ so that
  // passes do not revisit them; back into queue_ when a worker registers (capacity may grow).
  std::unordered_map<std::string, JobQueue::Entry> held_;
  std::chrono::steady_clock::time_point oldest_queued_updated_{};  // UpdateGauges, under mu_
  std::chrono::steady_clock::time_point stops_checked_{};          // CheckStops, under mu_
  std::unordered_map<std::string, int> queued_by_owner_;           // QUEUED jobs per spec.owner
  ClusterView cluster_;
  std::map<std::string, Worker> workers_;
  std::map<std::string, Attempt> attempts_;  // AttemptKey -> attempt still holding slots
  // Jobs cancelled between their durable creation and their adoption (a race of Submit and
  // Cancel); Adopt skips them.
  std::unordered_set<std::string> cancelled_before_adopt_;
  // Messages for workers, sent by Persist once the changes they announce are durable.
  std::vector<std::pair<std::string, v1::SchedulerMessage>> pending_sends_;
  std::chrono::steady_clock::time_point last_flush_;
  std::thread thread_;

  // Rendezvous waiters wake on any Set.
  std::mutex rdzv_mu_;
  std::condition_variable rdzv_cv_;
  uint64_t rdzv_version_ = 0;
};

}  // namespace dyt
