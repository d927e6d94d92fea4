// Concurrent writers: 8 threads submitting and updating jobs at once all succeed, their ids are
// unique, and everything they were told was written is there after a reopen. The counters show
// how RocksDB grouped the synced writes (printed, not asserted: grouping depends on timing).
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <thread>
#include <vector>

#include "scheduler/state_store.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::MakeEvent;
using testing::MakeJob;
using testing::OpenStore;
using testing::TempDir;

// "<prefix><t>-<i>", built by appending (GCC 12 warns falsely on chains of operator+ here).
std::string Label(const char* prefix, int t, int i) {
  std::string label(prefix);
  label.append(std::to_string(t)).append("-").append(std::to_string(i));
  return label;
}

TEST(ConcurrencyTest, EightWritersAllDurable) {
  constexpr int kThreads = 8;
  constexpr int kJobsPerThread = 60;
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  const StoreCounters before = store->counters();

  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kJobsPerThread; ++i) {
        v1::JobRecord record = MakeJob(Label("t", t, i));
        record.set_client_request_id(Label("req-", t, i));
        auto created = store->CreateJob(record, MakeEvent(v1::QUEUED, "submitted"));
        ASSERT_TRUE(created.ok()) << created.status().ToString();
        // A state change with its event, as the scheduler does when it places the job.
        v1::JobRecord scheduled = created->record;
        scheduled.mutable_job()->set_state(v1::SCHEDULED);
        auto seq = store->PutJobWithEvent(scheduled, MakeEvent(v1::SCHEDULED, "placed"));
        ASSERT_TRUE(seq.ok()) << seq.status().ToString();
        ids[t].push_back(created->record.job().id());
      }
    });
  }
  for (auto& thread : threads) thread.join();

  const StoreCounters after = store->counters();
  const uint64_t commits = after.commits - before.commits;
  const uint64_t syncs = after.wal_syncs - before.wal_syncs;
  std::printf("[ info ] %llu commits, %llu WAL syncs, %llu written by another thread's leader\n",
              static_cast<unsigned long long>(commits), static_cast<unsigned long long>(syncs),
              static_cast<unsigned long long>(after.grouped_writes - before.grouped_writes));
  EXPECT_EQ(commits, 2u * kThreads * kJobsPerThread);
  EXPECT_GE(syncs, 1u);
  EXPECT_LE(syncs, commits);

  std::set<std::string> unique;
  for (const auto& per_thread : ids) unique.insert(per_thread.begin(), per_thread.end());
  ASSERT_EQ(unique.size(), static_cast<size_t>(kThreads * kJobsPerThread));

  store.reset();
  store = OpenStore(dir.Join("db"));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kJobsPerThread; ++i) {
      const std::string& id = ids[t][i];
      auto job = store->GetJob(id);
      ASSERT_TRUE(job.ok()) << job.status().ToString();
      EXPECT_EQ(job->job().state(), v1::SCHEDULED);
      EXPECT_EQ(job->job().spec().name(), Label("t", t, i));
      auto events = store->ListJobEvents(id);
      ASSERT_TRUE(events.ok());
      ASSERT_EQ(events->size(), 2u) << id;
      EXPECT_EQ((*events)[0].event.state(), v1::QUEUED);
      EXPECT_EQ((*events)[1].event.state(), v1::SCHEDULED);
      EXPECT_EQ(*store->FindJobByRequestId(Label("req-", t, i)), id);
    }
  }
}

// Each synced write on its own is one WAL sync: nothing is acknowledged before it is on disk.
TEST(ConcurrencyTest, EverySingleThreadedWriteIsSynced) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  const StoreCounters before = store->counters();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(store->CreateJob(MakeJob("x"), {}).ok());
  const StoreCounters after = store->counters();
  EXPECT_EQ(after.commits - before.commits, 20u);
  EXPECT_EQ(after.wal_syncs - before.wal_syncs, 20u);
}

}  // namespace
}  // namespace dyt
