// StateStore: dyt-scheduler's durable state in one RocksDB directory (docs/scheduler.md).
//
// Column families, one per kind of record, values serialized protobufs (scheduler_state.proto):
//   jobs         <job id>                               -> JobRecord
//   job_events   <job id> 0x00 <seq, 8 bytes BE>        -> JobEvent
//   workers      <worker id>                            -> WorkerRecord
//   checkpoints  <job id> 0x00 <step, 8 bytes BE>       -> CheckpointRecord
//   rendezvous   <job id> 0x00 <attempt, 4 bytes BE><key> -> RendezvousValue
//   metadata     "store" -> StoreInfo; "request/<client request id>" -> RequestIndexEntry;
//                "job_number", "event_seq" -> 8-byte BE high-water marks (max-merged);
//                "token/<sha256 hex of a bearer token>" -> TokenInfo (auth_service.proto)
//
// Durability: every write method returns only after its WriteBatch is in the WAL and the WAL
// is fsynced (WriteOptions::sync). An OK return is a durable acknowledgement: the write
// survives a crash of the process or of the machine. Concurrent writers are group-committed:
// RocksDB's write leader appends the batches of every waiting thread and syncs once for all.
//
// Thread safety: every method may be called from any number of threads at once. The directory
// belongs to one StateStore at a time (RocksDB's LOCK file); a second Open fails.
//
// Errors name what failed: "get job job-000000000007: ...", "jobs/job-000000000007: value does
// not parse as dyt.v1.JobRecord". A damaged store answers DATA_LOSS. After a failed WAL write
// or sync RocksDB refuses further writes until the store is reopened; the service should exit
// and let its supervisor restart it.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/statistics.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "dyt/v1/auth_service.pb.h"
#include "dyt/v1/scheduler_state.pb.h"
#include "scheduler/key_lock.h"
#include "scheduler/state_batch.h"

namespace dyt {

// ListJobs filters; empty / unspecified fields match every job.
struct JobFilter {
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  std::string owner;  // exact match on job.spec.owner
  std::string name;   // exact match on job.spec.name
};

struct JobPage {
  std::vector<v1::JobRecord> jobs;
  std::string next_page_token;  // empty on the last page
};

struct StoredJobEvent {
  uint64_t seq = 0;
  v1::JobEvent event;
};

struct CreateJobResult {
  v1::JobRecord record;  // as stored, with its id
  bool created = false;  // false: the client request id was already known; nothing written
};

// Counts since Open, from RocksDB's statistics.
struct StoreCounters {
  uint64_t commits = 0;         // WriteBatches written (each one acknowledged write)
  uint64_t wal_syncs = 0;       // WAL fsyncs; fewer than commits when writes were grouped
  uint64_t grouped_writes = 0;  // commits written by another thread's write leader
};

struct StateStoreOptions {
  // The Env RocksDB does its I/O through; null: the default. For tests that inject I/O
  // failures. It must outlive the store.
  rocksdb::Env* env = nullptr;
};

class StateStore {
 public:
  static constexpr int kSchemaVersion = 1;
  static constexpr int kDefaultPageSize = 100;
  static constexpr int kMaxPageSize = 1000;

  // Opens the store in directory `path`, creating the directory (not its parents), the
  // database and any missing column family. Fails with FAILED_PRECONDITION when another
  // process has the store open, when the directory holds column families this version does
  // not know, or when it was written with a newer schema version; DATA_LOSS when it is
  // damaged; otherwise with RocksDB's reason. Every message names the path.
  static StatusOr<std::unique_ptr<StateStore>> Open(const std::string& path,
                                                    const StateStoreOptions& options = {});

  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::string& path() const { return path_; }

  // ----- Atomic, durable writes.
  StateBatch NewBatch() { return StateBatch(this); }
  // Writes the whole batch or nothing, synced to the WAL before it returns. An empty batch
  // is OK and writes nothing.
  Status Commit(StateBatch& batch);

  // ----- Jobs.
  // Submits a new job: gives record.job.id the next job number ("job-000000000042"; ids sort
  // in submission order, see FormatJobId) and writes the job, `event` (its first, usually
  // QUEUED) and, when record.client_request_id is set, the request index entry, in one
  // batch. When client_request_id is already indexed it writes nothing and returns the job
  // that request created with created = false (the caller decides whether a different spec
  // is an error). Concurrent calls with one request id create one job. record.job.id must
  // be empty.
  StatusOr<CreateJobResult> CreateJob(v1::JobRecord record, const v1::JobEvent& event);
  // CreateJob for many jobs in ONE batch (one WAL sync): result i belongs to jobs[i]. A job
  // whose request id repeats an earlier one of the same call gets that job (created = false).
  // A failed commit fails every job that would have been created.
  struct NewJob {
    v1::JobRecord record;
    v1::JobEvent event;
  };
  std::vector<StatusOr<CreateJobResult>> CreateJobs(std::vector<NewJob> jobs);
  // The job id a client request created; NOT_FOUND when the id was never used.
  StatusOr<std::string> FindJobByRequestId(const std::string& client_request_id) const;

  Status PutJob(const v1::JobRecord& record);
  // A state change: the job and the event recording it, in one batch. Returns the event's
  // sequence number.
  StatusOr<uint64_t> PutJobWithEvent(const v1::JobRecord& record, const v1::JobEvent& event);
  // NOT_FOUND "job <id>: not found" when there is no such job.
  StatusOr<v1::JobRecord> GetJob(const std::string& job_id) const;
  // Jobs matching `filter` in id order (= submission order for store-assigned ids), at most
  // page_size of them (<= 0: kDefaultPageSize; above kMaxPageSize: kMaxPageSize). Pass the
  // returned next_page_token to get the next page; paging from the first page to the last
  // returns every job that existed throughout exactly once, also while jobs are added or
  // updated. INVALID_ARGUMENT "page_token: ..." for a token ListJobs did not issue.
  StatusOr<JobPage> ListJobs(const JobFilter& filter, int page_size,
                             const std::string& page_token) const;
  // Calls `visit` for every job in id order, from one consistent snapshot; stops at and
  // returns the first error `visit` returns.
  Status ForEachJob(const std::function<Status(const v1::JobRecord&)>& visit) const;

  // ----- Job events (ordered per job by sequence number).
  StatusOr<uint64_t> AppendJobEvent(const std::string& job_id, const v1::JobEvent& event);
  // The job's events with seq > after_seq in order, at most `limit` (0: all). A job with no
  // events (or no such job) has an empty list.
  StatusOr<std::vector<StoredJobEvent>> ListJobEvents(const std::string& job_id,
                                                      uint64_t after_seq = 0,
                                                      size_t limit = 0) const;

  // ----- Workers.
  Status PutWorker(const v1::WorkerRecord& worker);
  StatusOr<v1::WorkerRecord> GetWorker(const std::string& worker_id) const;
  StatusOr<std::vector<v1::WorkerRecord>> ListWorkers() const;  // in id order
  Status DeleteWorker(const std::string& worker_id);            // OK when absent

  // ----- Checkpoints.
  Status PutCheckpoint(const v1::CheckpointRecord& checkpoint);
  StatusOr<v1::CheckpointRecord> GetCheckpoint(const std::string& job_id, int64_t step) const;
  // The job's checkpoints, lowest step first.
  StatusOr<std::vector<v1::CheckpointRecord>> ListCheckpoints(const std::string& job_id) const;
  // The job's highest-step checkpoint; NOT_FOUND when it has none.
  StatusOr<v1::CheckpointRecord> LatestCheckpoint(const std::string& job_id) const;
  Status DeleteCheckpoint(const std::string& job_id, int64_t step);  // OK when absent

  // ----- Rendezvous key-values, per job attempt.
  Status SetRendezvous(const std::string& job_id, int32_t attempt, const std::string& key,
                       const std::string& value);
  // NOT_FOUND when the key has not been set for that attempt.
  StatusOr<v1::RendezvousValue> GetRendezvous(const std::string& job_id, int32_t attempt,
                                              const std::string& key) const;
  Status DeleteRendezvousAttempt(const std::string& job_id, int32_t attempt);

  // ----- Bearer tokens, by the SHA-256 hex of the token (the token itself is never stored).
  Status PutToken(const std::string& token_hash, const v1::TokenInfo& info);
  // NOT_FOUND when no token has that hash.
  StatusOr<v1::TokenInfo> GetToken(const std::string& token_hash) const;
  // Every token as (hash, info), in hash order.
  StatusOr<std::vector<std::pair<std::string, v1::TokenInfo>>> ListTokens() const;

  StoreCounters counters() const;

 private:
  friend class StateBatch;

  StateStore() = default;
  Status Init(const std::string& path, const StateStoreOptions& options);
  Status InitStoreInfo();
  StatusOr<uint64_t> ReadHighWater(std::string_view key) const;

  // Reads `key` of `family` into `message`; NOT_FOUND "<what>: not found" when absent,
  // DATA_LOSS when the value does not parse.
  Status GetMessage(rocksdb::ColumnFamilyHandle* family, const std::string& key,
                    google::protobuf::MessageLite* message, const std::string& what) const;
  // Calls `visit(key, value, &stop)` for the keys in [lower, upper) of `family` in key order
  // (an empty bound is open), last key first when `reverse`, from one consistent snapshot.
  // Stops after a visit that sets `stop`, and at the first error a visit returns.
  Status Scan(rocksdb::ColumnFamilyHandle* family, const std::string& lower,
              const std::string& upper, bool reverse,
              const std::function<Status(std::string_view key, std::string_view value, bool* stop)>&
                  visit) const;
  Status CommitOne(StateBatch& batch, Status added);

  uint64_t NextEventSeq() { return last_event_seq_.fetch_add(1) + 1; }
  uint64_t NextJobNumber() { return last_job_number_.fetch_add(1) + 1; }
  void NoteJobNumber(uint64_t number);  // a job with this number exists: never hand it out

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned; destroyed before db_ closes
  rocksdb::ColumnFamilyHandle* jobs_ = nullptr;
  rocksdb::ColumnFamilyHandle* job_events_ = nullptr;
  rocksdb::ColumnFamilyHandle* workers_ = nullptr;
  rocksdb::ColumnFamilyHandle* checkpoints_ = nullptr;
  rocksdb::ColumnFamilyHandle* rendezvous_ = nullptr;
  rocksdb::ColumnFamilyHandle* metadata_ = nullptr;
  // The highest job number / event sequence handed out (not necessarily committed).
  std::atomic<uint64_t> last_job_number_{0};
  std::atomic<uint64_t> last_event_seq_{0};
  KeyLock request_ids_;  // held by CreateJob for its client request id
};

}  // namespace dyt
