#include "scheduler/state_batch.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "scheduler/state_keys.h"
#include "scheduler/state_store.h"

namespace dyt {

Status StateBatch::Put(rocksdb::ColumnFamilyHandle* family, const std::string& key,
                       const google::protobuf::MessageLite& value, std::string op) {
  std::string bytes;
  if (!value.SerializeToString(&bytes)) {
    return Internal(op + ": " + value.GetTypeName() + " does not serialize");
  }
  const rocksdb::Status status = batch_.Put(family, key, bytes);
  if (!status.ok()) return Internal(op + ": " + status.ToString());
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status StateBatch::PutJob(const v1::JobRecord& record) {
  const std::string& id = record.job().id();
  DYT_RETURN_IF_ERROR(CheckRecordId("job.id", id));
  if (record.job().state() == v1::JOB_STATE_UNSPECIFIED) {
    return InvalidArgument("job.state: must be set (job " + id + ")");
  }
  const std::string op = "put job " + id;
  if (record.job().events_size() > 0) {
    v1::JobRecord stripped = record;
    stripped.mutable_job()->clear_events();
    DYT_RETURN_IF_ERROR(Put(store_->jobs_, id, stripped, op));
  } else {
    DYT_RETURN_IF_ERROR(Put(store_->jobs_, id, record, op));
  }
  if (const auto number = ParseJobId(id)) {
    store_->NoteJobNumber(*number);
    max_job_number_ = std::max(max_job_number_, *number);
  }
  return Status::Ok();
}

StatusOr<uint64_t> StateBatch::AppendJobEvent(const std::string& job_id,
                                              const v1::JobEvent& event) {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  const uint64_t seq = store_->NextEventSeq();
  DYT_RETURN_IF_ERROR(Put(store_->job_events_, JobEventKey(job_id, seq), event,
                          "append event " + std::to_string(seq) + " to job " + job_id));
  max_event_seq_ = std::max(max_event_seq_, seq);
  return seq;
}

Status StateBatch::IndexRequest(const std::string& client_request_id, const std::string& job_id) {
  DYT_RETURN_IF_ERROR(CheckRecordId("client_request_id", client_request_id));
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  v1::RequestIndexEntry entry;
  entry.set_job_id(job_id);
  *entry.mutable_created() = google::protobuf::util::TimeUtil::GetCurrentTime();
  return Put(store_->metadata_, RequestIndexKey(client_request_id), entry,
             "index request " + client_request_id + " -> " + job_id);
}

Status StateBatch::PutWorker(const v1::WorkerRecord& worker) {
  DYT_RETURN_IF_ERROR(CheckRecordId("worker.id", worker.id()));
  return Put(store_->workers_, worker.id(), worker, "put worker " + worker.id());
}

Status StateBatch::DeleteWorker(const std::string& worker_id) {
  DYT_RETURN_IF_ERROR(CheckRecordId("worker id", worker_id));
  const rocksdb::Status status = batch_.Delete(store_->workers_, worker_id);
  if (!status.ok()) return Internal("delete worker " + worker_id + ": " + status.ToString());
  ops_.push_back("delete worker " + worker_id);
  return Status::Ok();
}

Status StateBatch::PutCheckpoint(const v1::CheckpointRecord& checkpoint) {
  DYT_RETURN_IF_ERROR(CheckRecordId("checkpoint.job_id", checkpoint.job_id()));
  if (checkpoint.step() < 0) {
    return InvalidArgument("checkpoint.step: must be >= 0, got " +
                           std::to_string(checkpoint.step()));
  }
  return Put(
      store_->checkpoints_, CheckpointKey(checkpoint.job_id(), checkpoint.step()), checkpoint,
      "put checkpoint " + checkpoint.job_id() + " step " + std::to_string(checkpoint.step()));
}

Status StateBatch::DeleteCheckpoint(const std::string& job_id, int64_t step) {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  if (step < 0) return InvalidArgument("step: must be >= 0, got " + std::to_string(step));
  const std::string op = "delete checkpoint " + job_id + " step " + std::to_string(step);
  const rocksdb::Status status = batch_.Delete(store_->checkpoints_, CheckpointKey(job_id, step));
  if (!status.ok()) return Internal(op + ": " + status.ToString());
  ops_.push_back(op);
  return Status::Ok();
}

Status StateBatch::SetRendezvous(const std::string& job_id, int32_t attempt, const std::string& key,
                                 const std::string& value) {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  DYT_RETURN_IF_ERROR(CheckRecordId("rendezvous key", key));
  if (attempt < 0) return InvalidArgument("attempt: must be >= 0, got " + std::to_string(attempt));
  if (value.size() > kMaxRendezvousValueBytes) {
    return InvalidArgument("rendezvous value: " + std::to_string(value.size()) +
                           " bytes, more than the limit of " +
                           std::to_string(kMaxRendezvousValueBytes));
  }
  v1::RendezvousValue record;
  record.set_value(value);
  *record.mutable_set() = google::protobuf::util::TimeUtil::GetCurrentTime();
  return Put(store_->rendezvous_, RendezvousKey(job_id, attempt, key), record,
             "set rendezvous " + job_id + " attempt " + std::to_string(attempt) + " key " + key);
}

Status StateBatch::DeleteRendezvousAttempt(const std::string& job_id, int32_t attempt) {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  if (attempt < 0) return InvalidArgument("attempt: must be >= 0, got " + std::to_string(attempt));
  const std::string op = "delete rendezvous " + job_id + " attempt " + std::to_string(attempt);
  const rocksdb::Status status =
      batch_.DeleteRange(store_->rendezvous_, RendezvousAttemptPrefix(job_id, attempt),
                         RendezvousAttemptEnd(job_id, attempt));
  if (!status.ok()) return Internal(op + ": " + status.ToString());
  ops_.push_back(op);
  return Status::Ok();
}

std::string StateBatch::Describe() const {
  constexpr size_t kShown = 4;
  std::string out;
  for (size_t i = 0; i < ops_.size() && i < kShown; ++i) {
    if (i > 0) out += ", ";
    out += ops_[i];
  }
  if (ops_.size() > kShown) out += " and " + std::to_string(ops_.size() - kShown) + " more";
  return out.empty() ? "empty batch" : out;
}

}  // namespace dyt
