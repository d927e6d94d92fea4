// StateStore: opening, committing, and the read helpers every record kind uses. The record
// kinds' methods are in state_store_jobs.cc and state_store_records.cc.
#include "scheduler/state_store.h"

#include <google/protobuf/util/time_util.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <set>

#include "scheduler/max_merge_operator.h"
#include "scheduler/rocks_status.h"
#include "scheduler/state_keys.h"

namespace dyt {
namespace {

constexpr const char* kFamilies[] = {"jobs",        "job_events", "workers",
                                     "checkpoints", "rendezvous", "metadata"};

rocksdb::DBOptions MakeDbOptions(const std::shared_ptr<rocksdb::Statistics>& statistics) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  // Replay the WAL up to the first damaged record (a write torn by a crash) and stop there:
  // everything acknowledged before it was synced whole, so it is all recovered.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.paranoid_checks = true;
  options.keep_log_file_num = 4;  // RocksDB's own LOG files in the directory
  options.max_background_jobs = 2;
  options.statistics = statistics;
  return options;
}

}  // namespace

StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path,
                                                       const StateStoreOptions& options) {
  if (path.empty()) return InvalidArgument("state store path: must not be empty");
  std::unique_ptr<StateStore> store(new StateStore());
  DYT_RETURN_IF_ERROR(store->Init(path, options));
  return store;
}

Status StateStore::Init(const std::string& path, const StateStoreOptions& options) {
  path_ = path;
  statistics_ = rocksdb::CreateDBStatistics();
  statistics_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  rocksdb::DBOptions db_options = MakeDbOptions(statistics_);
  if (options.env != nullptr) db_options.env = options.env;

  // RocksDB must open every column family a database has. One we do not know was made by a
  // newer dyt-scheduler: refuse rather than silently ignore its records.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, path, &existing).ok()) {
    const std::set<std::string> known(std::begin(kFamilies), std::end(kFamilies));
    for (const std::string& name : existing) {
      if (name != rocksdb::kDefaultColumnFamilyName && !known.contains(name)) {
        return FailedPrecondition("open state store " + path + ": it has column family '" + name +
                                  "', which this dyt-scheduler does not know " +
                                  "(made by a newer version?)");
      }
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (const char* name : kFamilies) {
    rocksdb::ColumnFamilyOptions options;
    if (std::string_view(name) == "metadata") options.merge_operator = NewUInt64MaxOperator();
    families.emplace_back(name, options);
  }
  rocksdb::DB* db = nullptr;
  const rocksdb::Status opened = rocksdb::DB::Open(db_options, path, families, &handles_, &db);
  if (!opened.ok()) {
    if (opened.IsIOError() && opened.ToString().find("lock") != std::string::npos) {
      return FailedPrecondition(
          "open state store " + path +
          ": another process has it open (its LOCK file is held): " + opened.ToString());
    }
    return FromRocksStatus(opened, "open state store " + path);
  }
  db_.reset(db);
  jobs_ = handles_[1];
  job_events_ = handles_[2];
  workers_ = handles_[3];
  checkpoints_ = handles_[4];
  rendezvous_ = handles_[5];
  metadata_ = handles_[6];

  DYT_RETURN_IF_ERROR(InitStoreInfo());
  DYT_ASSIGN_OR_RETURN(const uint64_t job_number, ReadHighWater(kJobNumberKey));
  DYT_ASSIGN_OR_RETURN(const uint64_t event_seq, ReadHighWater(kEventSeqKey));
  last_job_number_ = job_number;
  last_event_seq_ = event_seq;
  return Status::Ok();
}

Status StateStore::InitStoreInfo() {
  v1::StoreInfo info;
  const std::string what = "state store " + path_ + " metadata/store";
  const Status read = GetMessage(metadata_, std::string(kStoreInfoKey), &info, what);
  if (read.ok()) {
    if (info.schema_version() > kSchemaVersion) {
      return FailedPrecondition("open state store " + path_ + ": schema version " +
                                std::to_string(info.schema_version()) +
                                " is newer than this dyt-scheduler's " +
                                std::to_string(kSchemaVersion));
    }
    return Status::Ok();
  }
  if (read.code() != StatusCode::kNotFound) return read;
  // A new store: record what it is.
  info.set_schema_version(kSchemaVersion);
  *info.mutable_created() = google::protobuf::util::TimeUtil::GetCurrentTime();
  std::string bytes;
  info.SerializeToString(&bytes);
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocksStatus(db_->Put(options, metadata_, std::string(kStoreInfoKey), bytes),
                         "write " + what);
}

StatusOr<uint64_t> StateStore::ReadHighWater(std::string_view key) const {
  std::string value;
  const rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), metadata_, rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound()) return uint64_t{0};
  const std::string what = "state store " + path_ + " metadata/" + std::string(key);
  DYT_RETURN_IF_ERROR(FromRocksStatus(status, "read " + what));
  const auto number = DecodeBigEndian64(value);
  if (!number) {
    return DataLoss(what + ": " + std::to_string(value.size()) + " bytes, expected 8");
  }
  return *number;
}

StateStore::~StateStore() {
  if (!db_) return;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();  // every write was synced when it was acknowledged
}

void StateStore::NoteJobNumber(uint64_t number) {
  uint64_t last = last_job_number_.load();
  while (last < number && !last_job_number_.compare_exchange_weak(last, number)) {
  }
}

Status StateStore::Commit(StateBatch& batch) {
  if (batch.store_ != this) {
    return InvalidArgument("commit: the batch was made by another StateStore");
  }
  if (batch.batch_.Count() == 0) return Status::Ok();
  // The high-water marks go in the same WriteBatch as the records that use the numbers.
  // Merging them again on a retried Commit is harmless (max is idempotent).
  if (batch.max_job_number_ > 0) {
    batch.batch_
        .Merge(metadata_, std::string(kJobNumberKey), EncodeBigEndian64(batch.max_job_number_))
        .PermitUncheckedError();
  }
  if (batch.max_event_seq_ > 0) {
    batch.batch_
        .Merge(metadata_, std::string(kEventSeqKey), EncodeBigEndian64(batch.max_event_seq_))
        .PermitUncheckedError();
  }
  rocksdb::WriteOptions options;
  options.sync = true;  // acknowledged == in the WAL on disk
  return FromRocksStatus(db_->Write(options, &batch.batch_),
                         "state store " + path_ + ": commit (" + batch.Describe() + ")");
}

Status StateStore::CommitOne(StateBatch& batch, Status added) {
  DYT_RETURN_IF_ERROR(added);
  return Commit(batch);
}

Status StateStore::GetMessage(rocksdb::ColumnFamilyHandle* family, const std::string& key,
                              google::protobuf::MessageLite* message,
                              const std::string& what) const {
  rocksdb::PinnableSlice value;
  const rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), family, key, &value);
  if (status.IsNotFound()) return NotFound(what + ": not found");
  DYT_RETURN_IF_ERROR(FromRocksStatus(status, "read " + what));
  if (!message->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return DataLoss(what + ": value does not parse as " + message->GetTypeName());
  }
  return Status::Ok();
}

Status StateStore::Scan(rocksdb::ColumnFamilyHandle* family, const std::string& lower,
                        const std::string& upper, bool reverse,
                        const std::function<Status(std::string_view key, std::string_view value,
                                                   bool* stop)>& visit) const {
  rocksdb::ReadOptions options;  // an iterator reads from the snapshot taken when it is made
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  if (!lower.empty()) options.iterate_lower_bound = &lower_slice;
  if (!upper.empty()) options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, family));
  if (reverse) {
    it->SeekToLast();
  } else {
    it->SeekToFirst();
  }
  bool stop = false;
  for (; it->Valid() && !stop; reverse ? it->Prev() : it->Next()) {
    DYT_RETURN_IF_ERROR(visit(std::string_view(it->key().data(), it->key().size()),
                              std::string_view(it->value().data(), it->value().size()), &stop));
  }
  return FromRocksStatus(it->status(), "state store " + path_ + ": scan " + family->GetName());
}

StoreCounters StateStore::counters() const {
  StoreCounters counters;
  const uint64_t self = statistics_->getTickerCount(rocksdb::WRITE_DONE_BY_SELF);
  counters.grouped_writes = statistics_->getTickerCount(rocksdb::WRITE_DONE_BY_OTHER);
  counters.commits = self + counters.grouped_writes;
  counters.wal_syncs = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  return counters;
}

}  // namespace dyt
