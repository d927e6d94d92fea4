// ListJobs: filters, and pagination that returns every job exactly once.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "scheduler/state_keys.h"
#include "scheduler/state_store.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::MakeJob;
using testing::OpenStore;
using testing::TempDir;

const char* const kOwners[] = {"alice", "bob", "carol"};
const v1::JobState kStates[] = {v1::QUEUED, v1::RUNNING, v1::SUCCEEDED, v1::FAILED};

// Job number n: owner kOwners[n % 3], state kStates[n % 4], name "run-<n % 5>".
v1::JobRecord NumberedJob(uint64_t n) {
  v1::JobRecord record = MakeJob("run-" + std::to_string(n % 5), kOwners[n % 3], kStates[n % 4]);
  record.mutable_job()->set_id(FormatJobId(n));
  return record;
}

// Puts jobs first..last in one batch (fast: one sync for all).
void PutJobs(StateStore& store, uint64_t first, uint64_t last) {
  StateBatch batch = store.NewBatch();
  for (uint64_t n = first; n <= last; ++n) ASSERT_TRUE(batch.PutJob(NumberedJob(n)).ok());
  ASSERT_TRUE(store.Commit(batch).ok());
}

// Pages through with `page_size`, returning the ids in the order returned.
std::vector<std::string> ListAll(const StateStore& store, const JobFilter& filter, int page_size,
                                 int* pages = nullptr) {
  std::vector<std::string> ids;
  std::string token;
  int count = 0;
  do {
    auto page = store.ListJobs(filter, page_size, token);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    EXPECT_TRUE(!page->jobs.empty() || count == 0) << "an empty page after a token";
    for (const auto& record : page->jobs) ids.push_back(record.job().id());
    token = page->next_page_token;
    ++count;
  } while (!token.empty() && count < 10000);
  if (pages != nullptr) *pages = count;
  return ids;
}

TEST(ListJobsTest, PagesCoverEveryJobOnceInIdOrder) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  PutJobs(*store, 1, 257);
  for (int page_size : {1, 10, 100, 257, 1000}) {
    int pages = 0;
    const std::vector<std::string> ids = ListAll(*store, {}, page_size, &pages);
    ASSERT_EQ(ids.size(), 257u) << "page size " << page_size;
    for (uint64_t n = 1; n <= 257; ++n) EXPECT_EQ(ids[n - 1], FormatJobId(n));
    EXPECT_EQ(pages, (257 + page_size - 1) / page_size) << "page size " << page_size;
  }
}

TEST(ListJobsTest, FiltersCombineAndPage) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  PutJobs(*store, 1, 120);
  auto expect_matches = [&](const JobFilter& filter, auto predicate) {
    std::vector<std::string> expected;
    for (uint64_t n = 1; n <= 120; ++n) {
      if (predicate(n)) expected.push_back(FormatJobId(n));
    }
    EXPECT_EQ(ListAll(*store, filter, 7), expected);
  };
  expect_matches({v1::RUNNING, "", ""}, [](uint64_t n) { return kStates[n % 4] == v1::RUNNING; });
  expect_matches({v1::JOB_STATE_UNSPECIFIED, "bob", ""}, [](uint64_t n) { return n % 3 == 1; });
  expect_matches({v1::JOB_STATE_UNSPECIFIED, "", "run-2"}, [](uint64_t n) { return n % 5 == 2; });
  expect_matches({v1::SUCCEEDED, "carol", "run-0"},
                 [](uint64_t n) { return n % 4 == 2 && n % 3 == 2 && n % 5 == 0; });
  expect_matches({v1::CANCELLED, "", ""}, [](uint64_t) { return false; });
}

TEST(ListJobsTest, PagingWhileJobsAreAddedAndUpdated) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  PutJobs(*store, 1, 50);
  auto first = store->ListJobs({}, 20, "");
  ASSERT_TRUE(first.ok());
  std::vector<std::string> ids;
  for (const auto& record : first->jobs) ids.push_back(record.job().id());
  // Between pages: new jobs arrive, earlier and later ones change state.
  PutJobs(*store, 51, 60);
  for (uint64_t n : {3, 30, 45}) {
    v1::JobRecord record = NumberedJob(n);
    record.mutable_job()->set_state(v1::CANCELLED);
    ASSERT_TRUE(store->PutJob(record).ok());
  }
  std::string token = first->next_page_token;
  while (!token.empty()) {
    auto page = store->ListJobs({}, 20, token);
    ASSERT_TRUE(page.ok());
    for (const auto& record : page->jobs) ids.push_back(record.job().id());
    token = page->next_page_token;
  }
  ASSERT_EQ(ids.size(), 60u);
  const std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), 60u);
}

TEST(ListJobsTest, PageSizeDefaultAndCap) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  PutJobs(*store, 1, StateStore::kMaxPageSize + 5);
  auto page = store->ListJobs({}, 0, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->jobs.size(), static_cast<size_t>(StateStore::kDefaultPageSize));
  page = store->ListJobs({}, 1 << 30, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->jobs.size(), static_cast<size_t>(StateStore::kMaxPageSize));
  EXPECT_FALSE(page->next_page_token.empty());
}

TEST(ListJobsTest, ForeignTokenIsInvalidArgument) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  auto page = store->ListJobs({}, 10, "job-000000000001");
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().ToString(),
            "INVALID_ARGUMENT: page_token: not a token that ListJobs returned");
}

TEST(ListJobsTest, EmptyStoreHasOneEmptyPage) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  auto page = store->ListJobs({}, 10, "");
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->jobs.empty());
  EXPECT_TRUE(page->next_page_token.empty());
}

}  // namespace
}  // namespace dyt
