// JobQueue: highest priority first, FIFO by submission order within a priority; requeued jobs
// keep their place; Remove, Contains, ForEach stopping early.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scheduler/placement.h"

namespace dyt {
namespace {

std::vector<std::string> Ids(const JobQueue& queue) {
  std::vector<std::string> ids;
  for (const JobQueue::Entry& e : queue.Ordered()) ids.push_back(e.job_id);
  return ids;
}

TEST(JobQueueTest, HighestPriorityFirstFifoWithinPriority) {
  JobQueue queue;
  queue.Push({"j1", 0, 1});
  queue.Push({"j2", 5, 2});
  queue.Push({"j3", 0, 3});
  queue.Push({"j4", 5, 4});
  queue.Push({"j5", -3, 5});
  queue.Push({"j6", 100, 6});
  EXPECT_EQ(queue.size(), 6u);
  EXPECT_EQ(Ids(queue), (std::vector<std::string>{"j6", "j2", "j4", "j1", "j3", "j5"}));
  const std::vector<JobQueue::Entry> entries = queue.Ordered();
  EXPECT_EQ(entries[0].priority, 100);
  EXPECT_EQ(entries[0].order, 6u);
  EXPECT_EQ(entries[5].priority, -3);
  EXPECT_EQ(entries[5].order, 5u);
}

TEST(JobQueueTest, OrderIsSubmissionOrderNotPushOrder) {
  JobQueue queue;
  queue.Push({"late", 1, 20});
  queue.Push({"early", 1, 10});
  EXPECT_EQ(Ids(queue), (std::vector<std::string>{"early", "late"}));
}

TEST(JobQueueTest, RequeuedJobKeepsItsOriginalOrder) {
  JobQueue queue;
  queue.Push({"a", 1, 1});
  queue.Push({"b", 1, 2});
  queue.Push({"c", 1, 3});
  ASSERT_TRUE(queue.Remove("a"));  // scheduled
  queue.Push({"d", 1, 4});
  EXPECT_EQ(Ids(queue), (std::vector<std::string>{"b", "c", "d"}));
  queue.Push({"a", 1, 1});  // preempted: back in the queue ahead of later submissions
  EXPECT_EQ(Ids(queue), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(JobQueueTest, PushingAgainRepositionsWithoutDuplicating) {
  JobQueue queue;
  queue.Push({"a", 1, 1});
  queue.Push({"b", 1, 2});
  queue.Push({"b", 7, 2});  // priority raised
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(Ids(queue), (std::vector<std::string>{"b", "a"}));
  queue.Push({"b", 0, 2});
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(Ids(queue), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(queue.Ordered()[1].priority, 0);
}

TEST(JobQueueTest, RemoveAndContains) {
  JobQueue queue;
  EXPECT_FALSE(queue.Remove("x"));
  queue.Push({"x", 1, 1});
  queue.Push({"y", 1, 2});
  EXPECT_TRUE(queue.Contains("x"));
  EXPECT_TRUE(queue.Remove("x"));
  EXPECT_FALSE(queue.Contains("x"));
  EXPECT_FALSE(queue.Remove("x"));
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_EQ(Ids(queue), std::vector<std::string>{"y"});
  EXPECT_TRUE(queue.Remove("y"));
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_TRUE(queue.Ordered().empty());
}

TEST(JobQueueTest, EqualKeysDoNotOverwriteEachOther) {
  JobQueue queue;
  queue.Push({"p", 1, 7});
  queue.Push({"q", 1, 7});
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(Ids(queue), (std::vector<std::string>{"p", "q"}));
  EXPECT_TRUE(queue.Remove("p"));
  EXPECT_EQ(Ids(queue), std::vector<std::string>{"q"});
}

TEST(JobQueueTest, ForEachVisitsInOrderAndStopsEarly) {
  JobQueue queue;
  for (int i = 0; i < 10; ++i) {
    std::string id = "j";  // not "j" + to_string: GCC 12 warns falsely (-Wrestrict)
    id += std::to_string(i);
    queue.Push({id, i % 2, uint64_t(i)});
  }
  std::vector<std::string> seen;
  queue.ForEach([&](const JobQueue::Entry& e) {
    seen.push_back(e.job_id);
    return seen.size() < 3;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"j1", "j3", "j5"}));
}

}  // namespace
}  // namespace dyt
