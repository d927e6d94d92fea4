// CreateJob: store-assigned ids (sortable, never reused) and idempotent submission.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "scheduler/state_keys.h"
#include "scheduler/state_store.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::MakeEvent;
using testing::MakeJob;
using testing::OpenStore;
using testing::TempDir;

int CountJobs(const StateStore& store) {
  int count = 0;
  EXPECT_TRUE(store
                  .ForEachJob([&](const v1::JobRecord&) {
                    ++count;
                    return Status::Ok();
                  })
                  .ok());
  return count;
}

TEST(CreateJobTest, AssignsIncreasingIdsAndWritesTheFirstEvent) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  auto a = store->CreateJob(MakeJob("a"), MakeEvent(v1::QUEUED, "submitted"));
  auto b = store->CreateJob(MakeJob("b"), MakeEvent(v1::QUEUED, "submitted"));
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->record.job().id(), "job-000000000001");
  EXPECT_EQ(b->record.job().id(), "job-000000000002");
  auto got = store->GetJob("job-000000000002");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->job().spec().name(), "b");
  auto events = store->ListJobEvents("job-000000000001");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].event.reason(), "submitted");
}

TEST(CreateJobTest, IdsAreNeverReusedAcrossReopen) {
  TempDir dir;
  {
    auto store = OpenStore(dir.Join("db"));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->CreateJob(MakeJob("x"), {}).ok());
  }
  auto store = OpenStore(dir.Join("db"));
  auto next = store->CreateJob(MakeJob("y"), {});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->record.job().id(), "job-000000000004");
}

TEST(CreateJobTest, AJobPutUnderAStoreStyleIdAdvancesTheCounter) {
  TempDir dir;
  {
    auto store = OpenStore(dir.Join("db"));
    v1::JobRecord imported = MakeJob("imported");
    imported.mutable_job()->set_id(FormatJobId(50));
    ASSERT_TRUE(store->PutJob(imported).ok());
    auto next = store->CreateJob(MakeJob("x"), {});
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->record.job().id(), FormatJobId(51));
  }
  auto store = OpenStore(dir.Join("db"));
  auto next = store->CreateJob(MakeJob("y"), {});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->record.job().id(), FormatJobId(52));
}

TEST(CreateJobTest, RetryWithTheSameRequestIdReturnsTheFirstJob) {
  TempDir dir;
  std::string id;
  {
    auto store = OpenStore(dir.Join("db"));
    v1::JobRecord record = MakeJob("llama");
    record.set_client_request_id("req-1");
    auto first = store->CreateJob(record, MakeEvent(v1::QUEUED, "submitted"));
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    ASSERT_TRUE(first->created);
    id = first->record.job().id();

    record.mutable_job()->mutable_spec()->set_name("different spec, same request");
    auto retry = store->CreateJob(record, MakeEvent(v1::QUEUED, "submitted"));
    ASSERT_TRUE(retry.ok());
    EXPECT_FALSE(retry->created);
    EXPECT_EQ(retry->record.job().id(), id);
    EXPECT_EQ(retry->record.job().spec().name(), "llama");  // what the first call stored
    EXPECT_EQ(retry->record.client_request_id(), "req-1");
  }
  auto store = OpenStore(dir.Join("db"));  // the index is durable too
  auto found = store->FindJobByRequestId("req-1");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, id);
  v1::JobRecord record = MakeJob("llama");
  record.set_client_request_id("req-1");
  auto retry = store->CreateJob(record, MakeEvent(v1::QUEUED, "submitted"));
  ASSERT_TRUE(retry.ok());
  EXPECT_FALSE(retry->created);
  EXPECT_EQ(retry->record.job().id(), id);
  EXPECT_EQ(CountJobs(*store), 1);
  EXPECT_EQ(store->ListJobEvents(id)->size(), 1u);  // the retry wrote no event

  auto unknown = store->FindJobByRequestId("req-2");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "client request req-2: not found");
}

TEST(CreateJobTest, ConcurrentRetriesOfOneRequestCreateOneJob) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  constexpr int kThreads = 8;
  std::vector<std::string> ids(kThreads);
  std::vector<int> created(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      v1::JobRecord record = MakeJob("same");
      record.set_client_request_id("req-shared");
      auto result = store->CreateJob(record, MakeEvent(v1::QUEUED, "submitted"));
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      ids[t] = result->record.job().id();
      created[t] = result->created ? 1 : 0;
    });
  }
  for (auto& thread : threads) thread.join();
  int creators = 0;
  for (int c : created) creators += c;
  EXPECT_EQ(creators, 1);
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(CountJobs(*store), 1);
}

TEST(CreateJobTest, RejectsAPresetIdAndABadRequestId) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  v1::JobRecord with_id = MakeJob("x");
  with_id.mutable_job()->set_id("mine");
  auto result = store->CreateJob(with_id, {});
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "job.id: must be empty, the store assigns it (got mine)");
  v1::JobRecord bad_request = MakeJob("x");
  bad_request.set_client_request_id(std::string(kMaxRecordIdBytes + 1, 'r'));
  EXPECT_EQ(store->CreateJob(bad_request, {}).status().message(),
            "client_request_id: longer than " + std::to_string(kMaxRecordIdBytes) + " bytes");
  EXPECT_EQ(CountJobs(*store), 0);
}

}  // namespace
}  // namespace dyt
