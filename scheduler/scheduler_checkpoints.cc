// Scheduler: the checkpoints of jobs, as workers report them and as found on disk.
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "scheduler/checkpoint_scan.h"
#include "scheduler/job_states.h"
#include "scheduler/scheduler.h"

namespace dyt {

using google::protobuf::util::TimeUtil;

Status Scheduler::RaiseLastCheckpointStep(const std::string& job_id, int64_t step) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) {
    v1::Job& job = *it->second.record.mutable_job();
    job.set_last_checkpoint_step(std::max(job.last_checkpoint_step(), step));
    it->second.progress_dirty = true;  // written with the next flush or state change
    return Status::Ok();
  }
  DYT_ASSIGN_OR_RETURN(v1::JobRecord stored, store_->GetJob(job_id));
  if (step <= stored.job().last_checkpoint_step()) return Status::Ok();
  stored.mutable_job()->set_last_checkpoint_step(step);
  return store_->PutJob(stored);
}

Status Scheduler::OnCheckpoint(const std::string& worker_id, const v1::CheckpointRecord& checkpoint,
                               Batch& batch) {
  (void)batch;
  if (checkpoint.step() < 0) return InvalidArgument("checkpoint.step: must be >= 0");
  // The checkpoint must be where this job's checkpoints go.
  std::string dir = options_.artifact_root + "/" + checkpoint.job_id() + "/";
  if (checkpoint.path().rfind(dir, 0) != 0 || checkpoint.path().find("..") != std::string::npos) {
    return InvalidArgument("checkpoint.path: must be under " + dir + " (got " + checkpoint.path() +
                           ")");
  }
  if (!RanOn(worker_id, checkpoint.job_id(), checkpoint.attempt(), -1)) {
    return NotItsRank(worker_id, "a checkpoint", checkpoint.job_id(), checkpoint.attempt(), -1);
  }
  v1::CheckpointRecord record = checkpoint;
  if (!record.has_created()) *record.mutable_created() = TimeUtil::GetCurrentTime();
  if (jobs_.count(checkpoint.job_id()) == 0) return OnLateCheckpoint(worker_id, record);
  DYT_RETURN_IF_ERROR(store_->PutCheckpoint(record));
  DYT_RETURN_IF_ERROR(RaiseLastCheckpointStep(record.job_id(), record.step()));
  Changed();
  spdlog::info("job {}: checkpoint step {} from {} ({} bytes)", record.job_id(), record.step(),
               worker_id, record.total_bytes());
  return Status::Ok();
}

Status Scheduler::OnLateCheckpoint(const std::string& worker_id,
                                   const v1::CheckpointRecord& record) {
  auto not_running = [&] {
    return FailedPrecondition("checkpoint.job_id: job " + record.job_id() + " is not running");
  };
  StatusOr<v1::JobRecord> stored = store_->GetJob(record.job_id());
  if (!stored.ok())
    return stored.status().code() == StatusCode::kNotFound ? not_running() : stored.status();
  const v1::JobRecord& job = *stored;
  // Only from ranks of the ended job's last attempt still running on that worker: a cancelled
  // job's ranks save a checkpoint on the SIGTERM that stops them, after the job has left the
  // live set (its attempt holds the slots until they exit).
  auto attempt = attempts_.find(AttemptKey(record.job_id(), record.attempt()));
  const bool still_there =
      attempt != attempts_.end() && attempt->second.live_ranks.count(worker_id) > 0;
  if (!IsTerminalJobState(job.job().state()) || job.job().attempt() != record.attempt() ||
      !still_there) {
    return not_running();
  }
  DYT_RETURN_IF_ERROR(store_->PutCheckpoint(record));
  DYT_RETURN_IF_ERROR(RaiseLastCheckpointStep(record.job_id(), record.step()));
  Changed();
  spdlog::info("job {} ({}): checkpoint step {} from {}, saved while its ranks stopped",
               record.job_id(), v1::JobState_Name(job.job().state()), record.step(), worker_id);
  return Status::Ok();
}

StatusOr<int> Scheduler::AdoptCheckpointsOnDisk(const std::string& job_id) {
  if (options_.artifact_root.empty()) return 0;
  // The job must exist: its id is then a checked one, safe as a directory name.
  DYT_ASSIGN_OR_RETURN(v1::JobRecord job, store_->GetJob(job_id));
  CheckpointBounds bounds;
  bounds.max_step = job.job().spec().train().steps();
  bounds.max_attempt = job.job().attempt();
  DYT_ASSIGN_OR_RETURN(std::vector<v1::CheckpointRecord> listed, store_->ListCheckpoints(job_id));
  std::set<int64_t> known;
  for (const auto& c : listed) known.insert(c.step());
  // Read the disk without holding mu_: manifests of big jobs take a moment.
  DYT_ASSIGN_OR_RETURN(CheckpointScan scan, ScanCheckpointDir(options_.artifact_root + "/" + job_id,
                                                              job_id, known, bounds));
  for (const std::string& why : scan.skipped) {
    spdlog::debug("job {}: not a checkpoint: {}", job_id, why);
  }
  if (scan.found.empty()) return 0;
  std::lock_guard lock(mu_);
  int added = 0;
  for (const v1::CheckpointRecord& record : scan.found) {
    // A worker may have reported it since the listing: its record stays.
    StatusOr<v1::CheckpointRecord> existing = store_->GetCheckpoint(job_id, record.step());
    if (existing.ok()) continue;
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    DYT_RETURN_IF_ERROR(store_->PutCheckpoint(record));
    DYT_RETURN_IF_ERROR(RaiseLastCheckpointStep(job_id, record.step()));
    ++added;
    spdlog::info("job {}: checkpoint step {} (attempt {}) found in {}, which no worker reported",
                 job_id, record.step(), record.attempt(), record.path());
  }
  if (added > 0) Changed();
  return added;
}

}  // namespace dyt
