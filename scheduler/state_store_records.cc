// StateStore: workers, checkpoints and rendezvous values.
#include "scheduler/state_keys.h"
#include "scheduler/state_store.h"

namespace dyt {
namespace {

std::string CheckpointName(const std::string& job_id, int64_t step) {
  return "checkpoint " + job_id + " step " + std::to_string(step);
}

Status ParseCheckpoint(const std::string& job_id, std::string_view value,
                       v1::CheckpointRecord* checkpoint) {
  if (!checkpoint->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return DataLoss("checkpoints of job " + job_id +
                    ": a value does not parse as dyt.v1.CheckpointRecord");
  }
  return Status::Ok();
}

}  // namespace

Status StateStore::PutWorker(const v1::WorkerRecord& worker) {
  StateBatch batch = NewBatch();
  return CommitOne(batch, batch.PutWorker(worker));
}

StatusOr<v1::WorkerRecord> StateStore::GetWorker(const std::string& worker_id) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("worker id", worker_id));
  v1::WorkerRecord worker;
  DYT_RETURN_IF_ERROR(GetMessage(workers_, worker_id, &worker, "worker " + worker_id));
  return worker;
}

StatusOr<std::vector<v1::WorkerRecord>> StateStore::ListWorkers() const {
  std::vector<v1::WorkerRecord> workers;
  DYT_RETURN_IF_ERROR(
      Scan(workers_, "", "", false, [&](std::string_view key, std::string_view value, bool*) {
        v1::WorkerRecord worker;
        if (!worker.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          return DataLoss("workers/" + std::string(key) +
                          ": value does not parse as dyt.v1.WorkerRecord");
        }
        workers.push_back(std::move(worker));
        return Status::Ok();
      }));
  return workers;
}

Status StateStore::DeleteWorker(const std::string& worker_id) {
  StateBatch batch = NewBatch();
  return CommitOne(batch, batch.DeleteWorker(worker_id));
}

Status StateStore::PutCheckpoint(const v1::CheckpointRecord& checkpoint) {
  StateBatch batch = NewBatch();
  return CommitOne(batch, batch.PutCheckpoint(checkpoint));
}

StatusOr<v1::CheckpointRecord> StateStore::GetCheckpoint(const std::string& job_id,
                                                         int64_t step) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  if (step < 0) return InvalidArgument("step: must be >= 0, got " + std::to_string(step));
  v1::CheckpointRecord checkpoint;
  DYT_RETURN_IF_ERROR(GetMessage(checkpoints_, CheckpointKey(job_id, step), &checkpoint,
                                 CheckpointName(job_id, step)));
  return checkpoint;
}

StatusOr<std::vector<v1::CheckpointRecord>> StateStore::ListCheckpoints(
    const std::string& job_id) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  std::vector<v1::CheckpointRecord> checkpoints;
  DYT_RETURN_IF_ERROR(Scan(checkpoints_, JobPrefix(job_id), JobPrefixEnd(job_id), false,
                           [&](std::string_view, std::string_view value, bool*) {
                             v1::CheckpointRecord checkpoint;
                             DYT_RETURN_IF_ERROR(ParseCheckpoint(job_id, value, &checkpoint));
                             checkpoints.push_back(std::move(checkpoint));
                             return Status::Ok();
                           }));
  return checkpoints;
}

StatusOr<v1::CheckpointRecord> StateStore::LatestCheckpoint(const std::string& job_id) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  std::optional<v1::CheckpointRecord> latest;
  DYT_RETURN_IF_ERROR(Scan(checkpoints_, JobPrefix(job_id), JobPrefixEnd(job_id), true,
                           [&](std::string_view, std::string_view value, bool* stop) {
                             latest.emplace();
                             *stop = true;
                             return ParseCheckpoint(job_id, value, &*latest);
                           }));
  if (!latest) return NotFound("latest checkpoint of job " + job_id + ": the job has none");
  return *std::move(latest);
}

Status StateStore::DeleteCheckpoint(const std::string& job_id, int64_t step) {
  StateBatch batch = NewBatch();
  return CommitOne(batch, batch.DeleteCheckpoint(job_id, step));
}

Status StateStore::SetRendezvous(const std::string& job_id, int32_t attempt, const std::string& key,
                                 const std::string& value) {
  StateBatch batch = NewBatch();
  return CommitOne(batch, batch.SetRendezvous(job_id, attempt, key, value));
}

StatusOr<v1::RendezvousValue> StateStore::GetRendezvous(const std::string& job_id, int32_t attempt,
                                                        const std::string& key) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  DYT_RETURN_IF_ERROR(CheckRecordId("rendezvous key", key));
  if (attempt < 0) return InvalidArgument("attempt: must be >= 0, got " + std::to_string(attempt));
  v1::RendezvousValue value;
  DYT_RETURN_IF_ERROR(
      GetMessage(rendezvous_, RendezvousKey(job_id, attempt, key), &value,
                 "rendezvous " + job_id + " attempt " + std::to_string(attempt) + " key " + key));
  return value;
}

Status StateStore::DeleteRendezvousAttempt(const std::string& job_id, int32_t attempt) {
  StateBatch batch = NewBatch();
  return CommitOne(batch, batch.DeleteRendezvousAttempt(job_id, attempt));
}

}  // namespace dyt
