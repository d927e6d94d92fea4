// StateBatch atomicity: a batch's writes are all in the store or none are, including when the
// commit itself fails in the middle of writing the WAL (an injected I/O error).
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>

#include "scheduler/state_batch.h"
#include "scheduler/state_store.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::MakeEvent;
using testing::MakeJob;
using testing::OpenStore;
using testing::TempDir;

// A WAL file whose appends fail while `fail` is set, as a full or failing disk would.
class FailableWalFile : public rocksdb::FSWritableFileWrapper {
 public:
  FailableWalFile(std::unique_ptr<rocksdb::FSWritableFile> file, const std::atomic<bool>* fail)
      : rocksdb::FSWritableFileWrapper(file.get()), file_(std::move(file)), fail_(fail) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (fail_->load()) return rocksdb::IOStatus::IOError("injected WAL append failure");
    return FSWritableFileWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (fail_->load()) return rocksdb::IOStatus::IOError("injected WAL append failure");
    return FSWritableFileWrapper::Append(data, options, info, dbg);
  }

 private:
  std::unique_ptr<rocksdb::FSWritableFile> file_;
  const std::atomic<bool>* fail_;
};

class FailableFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FailableFileSystem() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "FailableFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus status = target()->NewWritableFile(name, options, result, dbg);
    const bool is_wal = name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
    if (status.ok() && is_wal) {
      *result = std::make_unique<FailableWalFile>(std::move(*result), &fail_wal_appends);
    }
    return status;
  }

  std::atomic<bool> fail_wal_appends{false};
};

v1::JobRecord JobWithId(const std::string& id, v1::JobState state) {
  v1::JobRecord record = MakeJob(id, "alice", state);
  record.mutable_job()->set_id(id);
  return record;
}

TEST(BatchTest, StateChangeAndItsEventCommitTogether) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  ASSERT_TRUE(store->PutJob(JobWithId("j1", v1::QUEUED)).ok());
  auto seq = store->PutJobWithEvent(JobWithId("j1", v1::RUNNING), MakeEvent(v1::RUNNING, "go"));
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  store.reset();
  store = OpenStore(dir.Join("db"));
  EXPECT_EQ(store->GetJob("j1")->job().state(), v1::RUNNING);
  auto events = store->ListJobEvents("j1");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].seq, *seq);
  EXPECT_EQ((*events)[0].event.reason(), "go");
}

TEST(BatchTest, ManyRecordKindsInOneBatch) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  StateBatch batch = store->NewBatch();
  for (const char* id : {"j1", "j2", "j3"}) {
    ASSERT_TRUE(batch.PutJob(JobWithId(id, v1::QUEUED)).ok());
    ASSERT_TRUE(batch.AppendJobEvent(id, MakeEvent(v1::QUEUED, "worker w1 died")).ok());
  }
  ASSERT_TRUE(batch.DeleteWorker("w1").ok());
  ASSERT_TRUE(batch.DeleteRendezvousAttempt("j1", 0).ok());
  EXPECT_EQ(batch.size(), 8);
  EXPECT_EQ(batch.Describe(),
            "put job j1, append event 1 to job j1, put job j2, append event 2 to job j2 and 4 "
            "more");
  ASSERT_TRUE(store->Commit(batch).ok());
  store.reset();
  store = OpenStore(dir.Join("db"));
  for (const char* id : {"j1", "j2", "j3"}) {
    EXPECT_TRUE(store->GetJob(id).ok()) << id;
    EXPECT_EQ(store->ListJobEvents(id)->size(), 1u) << id;
  }
}

TEST(BatchTest, InvalidOperationLeavesTheBatchUnchanged) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  StateBatch batch = store->NewBatch();
  EXPECT_EQ(batch.PutJob(MakeJob("no id")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(batch.AppendJobEvent("", MakeEvent(v1::QUEUED, "x")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(batch.PutCheckpoint(v1::CheckpointRecord()).message(),
            "checkpoint.job_id: must not be empty");
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.rocksdb_batch().Count(), 0u);
  EXPECT_TRUE(store->Commit(batch).ok());  // an empty batch writes nothing
}

TEST(BatchTest, BatchOfAnotherStoreIsRefused) {
  TempDir dir;
  auto a = OpenStore(dir.Join("a"));
  auto b = OpenStore(dir.Join("b"));
  StateBatch batch = a->NewBatch();
  ASSERT_TRUE(batch.PutJob(JobWithId("j1", v1::QUEUED)).ok());
  EXPECT_EQ(b->Commit(batch).code(), StatusCode::kInvalidArgument);
}

// The commit fails while writing the WAL: neither the job nor its event is visible, then or
// after reopening, and the store refuses writes until it is reopened.
TEST(BatchTest, FailedCommitWritesNothing) {
  TempDir dir;
  auto fs = std::make_shared<FailableFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  {
    auto store = OpenStore(dir.Join("db"), StateStoreOptions{env.get()});
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->PutJob(JobWithId("before", v1::QUEUED)).ok());

    fs->fail_wal_appends = true;
    StateBatch batch = store->NewBatch();
    ASSERT_TRUE(batch.PutJob(JobWithId("lost", v1::RUNNING)).ok());
    ASSERT_TRUE(batch.AppendJobEvent("lost", MakeEvent(v1::RUNNING, "started")).ok());
    const Status commit = store->Commit(batch);
    ASSERT_FALSE(commit.ok());
    EXPECT_NE(commit.message().find("commit (put job lost, append event"), std::string::npos)
        << commit.ToString();
    EXPECT_NE(commit.message().find("injected WAL append failure"), std::string::npos)
        << commit.ToString();

    EXPECT_EQ(store->GetJob("lost").status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(store->ListJobEvents("lost")->empty());

    fs->fail_wal_appends = false;
    EXPECT_FALSE(store->PutJob(JobWithId("after", v1::QUEUED)).ok())
        << "RocksDB keeps refusing writes after a failed WAL write";
  }
  auto store = OpenStore(dir.Join("db"));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->GetJob("before").ok());
  EXPECT_EQ(store->GetJob("lost").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->ListJobEvents("lost")->empty());
  EXPECT_TRUE(store->PutJob(JobWithId("after", v1::QUEUED)).ok());
}

}  // namespace
}  // namespace dyt
