// StateBatch: writes that must land together, or not at all.
//
// A job's state change and the event recording it; a new job, its first event and its
// client-request-id index entry; a requeue that rewrites several jobs. StateStore::Commit
// applies a batch as ONE RocksDB WriteBatch: a single WAL record, fsynced before Commit
// returns. After a crash at any point either every write of the batch is in the store or none
// is; readers never see half of a batch either.
//
// Each method validates and serializes its record at once and returns INVALID_ARGUMENT naming
// the field when it is unusable (the batch is then unchanged); nothing reaches the store until
// Commit. A batch belongs to one thread and to the store that made it (StateStore::NewBatch).
#pragma once

#include <google/protobuf/message_lite.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "dyt/v1/scheduler_state.pb.h"

namespace dyt {

class StateStore;

class StateBatch {
 public:
  StateBatch(StateBatch&&) = default;
  StateBatch& operator=(StateBatch&&) = default;

  // jobs/<job.id> = record. record.job.events is not stored (events live in job_events, see
  // AppendJobEvent). The job must have an id and a state other than JOB_STATE_UNSPECIFIED.
  Status PutJob(const v1::JobRecord& record);

  // Appends `event` to the job's event log and returns its sequence number. Numbers come from
  // one store-wide counter: they increase with every event added to any batch, so a job's
  // events are ordered by when they were added; they are not dense per job, and a batch that
  // is never committed leaves a gap, never a reused number. The job itself is not checked to
  // exist: put it in the same batch when it is new.
  StatusOr<uint64_t> AppendJobEvent(const std::string& job_id, const v1::JobEvent& event);

  // metadata/request/<client_request_id> = job_id: the idempotent-submit index. Put it in the
  // batch that creates the job (StateStore::CreateJob does).
  Status IndexRequest(const std::string& client_request_id, const std::string& job_id);

  Status PutWorker(const v1::WorkerRecord& worker);
  // Deleting a worker that is not there is not an error.
  Status DeleteWorker(const std::string& worker_id);

  // checkpoints/<job_id, step>; step >= 0.
  Status PutCheckpoint(const v1::CheckpointRecord& checkpoint);
  // Deleting a checkpoint record that is not there is not an error.
  Status DeleteCheckpoint(const std::string& job_id, int64_t step);

  // rendezvous/<job_id, attempt, key> = value (at most kMaxRendezvousValueBytes); attempt >= 0.
  Status SetRendezvous(const std::string& job_id, int32_t attempt, const std::string& key,
                       const std::string& value);
  // Every rendezvous key of one attempt (one range deletion).
  Status DeleteRendezvousAttempt(const std::string& job_id, int32_t attempt);

  // Operations added so far (the counter merges Commit adds are not counted).
  int size() const { return static_cast<int>(ops_.size()); }
  bool empty() const { return ops_.empty(); }
  // "put job job-000000000001, append event to job-000000000001": for error messages.
  std::string Describe() const;

  // The underlying RocksDB batch, for tests that inject failures into a commit.
  rocksdb::WriteBatch& rocksdb_batch() { return batch_; }

  static constexpr size_t kMaxRendezvousValueBytes = 1 << 20;

 private:
  friend class StateStore;
  explicit StateBatch(StateStore* store) : store_(store) {}

  Status Put(rocksdb::ColumnFamilyHandle* family, const std::string& key,
             const google::protobuf::MessageLite& value, std::string op);

  StateStore* store_;
  rocksdb::WriteBatch batch_;
  std::vector<std::string> ops_;
  // Highest job number (of FormatJobId ids put) and event sequence in the batch; Commit merges
  // them into metadata's high-water marks in the same WriteBatch.
  uint64_t max_job_number_ = 0;
  uint64_t max_event_seq_ = 0;
};

}  // namespace dyt
