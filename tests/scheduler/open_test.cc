// Opening a store: creation, and clear errors for what cannot be opened or read.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <fstream>

#include "scheduler/max_merge_operator.h"
#include "scheduler/state_recovery.h"
#include "scheduler/state_store.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::OpenStore;
using testing::TempDir;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Opens the directory with plain RocksDB and every column family it has, runs `write`.
void WriteRaw(const std::string& path,
              const std::function<void(rocksdb::DB*, std::vector<rocksdb::ColumnFamilyHandle*>&,
                                       const std::vector<std::string>&)>& write,
              const std::vector<std::string>& extra_families = {}) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, path, &names).ok());
  for (const std::string& extra : extra_families) names.push_back(extra);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) {
    rocksdb::ColumnFamilyOptions cf;
    if (name == "metadata") cf.merge_operator = NewUInt64MaxOperator();
    families.emplace_back(name, cf);
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, families, &handles, &db).ok());
  write(db, handles, names);
  for (auto* handle : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

rocksdb::ColumnFamilyHandle* Family(std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                                    const std::vector<std::string>& names,
                                    const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return handles[i];
  }
  ADD_FAILURE() << "no column family " << name;
  return nullptr;
}

TEST(OpenTest, CreatesEveryColumnFamily) {
  TempDir dir;
  ASSERT_NE(OpenStore(dir.Join("db")), nullptr);
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.Join("db"), &names).ok());
  for (const char* name :
       {"default", "jobs", "job_events", "workers", "checkpoints", "rendezvous", "metadata"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

TEST(OpenTest, EmptyPathIsInvalid) {
  auto store = StateStore::Open("");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().ToString(), "INVALID_ARGUMENT: state store path: must not be empty");
}

TEST(OpenTest, MissingParentDirectoryNamesThePath) {
  TempDir dir;
  const std::string path = dir.Join("no/such/parent");
  auto store = StateStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Contains(store.status().message(), "open state store " + path))
      << store.status().ToString();
}

TEST(OpenTest, PathThatIsAFileFails) {
  TempDir dir;
  const std::string path = dir.Join("file");
  std::ofstream(path) << "not a database";
  auto store = StateStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Contains(store.status().message(), path)) << store.status().ToString();
}

TEST(OpenTest, SecondOpenOfAnOpenStoreIsRefused) {
  TempDir dir;
  auto first = OpenStore(dir.Join("db"));
  ASSERT_NE(first, nullptr);
  auto second = StateStore::Open(dir.Join("db"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(second.status().message(), "another process has it open"))
      << second.status().ToString();
  first.reset();
  EXPECT_NE(OpenStore(dir.Join("db")), nullptr);  // free again once closed
}

TEST(OpenTest, UnknownColumnFamilyIsRefused) {
  TempDir dir;
  ASSERT_NE(OpenStore(dir.Join("db")), nullptr);
  WriteRaw(dir.Join("db"), [](auto*, auto&, const auto&) {}, {"future_records"});
  auto store = StateStore::Open(dir.Join("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(store.status().message(), "'future_records'")) << store.status().ToString();
}

TEST(OpenTest, NewerSchemaIsRefused) {
  TempDir dir;
  ASSERT_NE(OpenStore(dir.Join("db")), nullptr);
  WriteRaw(dir.Join("db"), [](rocksdb::DB* db, auto& handles, const auto& names) {
    v1::StoreInfo info;
    info.set_schema_version(StateStore::kSchemaVersion + 1);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), Family(handles, names, "metadata"), "store",
                        info.SerializeAsString())
                    .ok());
  });
  auto store = StateStore::Open(dir.Join("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(store.status().message(), "schema version 2 is newer"))
      << store.status().ToString();
}

TEST(OpenTest, DamagedRecordIsDataLossNamingIt) {
  TempDir dir;
  {
    auto store = OpenStore(dir.Join("db"));
    v1::JobRecord record = testing::MakeJob("fine");
    record.mutable_job()->set_id("job-000000000001");
    ASSERT_TRUE(store->PutJob(record).ok());
  }
  WriteRaw(dir.Join("db"), [](rocksdb::DB* db, auto& handles, const auto& names) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), Family(handles, names, "jobs"), "job-000000000002",
                        "\x0a\x05"
                        "ab")  // field 1 says 5 bytes, 2 follow
                    .ok());
  });
  auto store = OpenStore(dir.Join("db"));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->GetJob("job-000000000001").ok());
  auto bad = store->GetJob("job-000000000002");
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(bad.status().message(),
            "job job-000000000002: value does not parse as dyt.v1.JobRecord");
  auto all = LoadAll(*store);
  EXPECT_EQ(all.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(all.status().message(), "jobs/job-000000000002")) << all.status().ToString();
}

}  // namespace
}  // namespace dyt
