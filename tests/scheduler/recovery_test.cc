// LoadAll after a restart: exactly the non-terminal jobs, their latest checkpoints, every
// worker, and counts by state.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "scheduler/state_recovery.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::MakeEvent;
using testing::MakeJob;
using testing::OpenStore;
using testing::TempDir;

TEST(RecoveryTest, RestartRecoversExactlyTheActiveState) {
  TempDir dir;
  std::map<std::string, v1::JobRecord> active;
  {
    auto store = OpenStore(dir.Join("db"));
    const v1::JobState states[] = {v1::QUEUED,    v1::SCHEDULED,  v1::RUNNING,
                                   v1::SUCCEEDED, v1::FAILED,     v1::CANCELLED,
                                   v1::PREEMPTED, v1::RESTARTING, v1::RUNNING};
    for (v1::JobState state : states) {
      auto created = store->CreateJob(MakeJob(v1::JobState_Name(state)), {});
      ASSERT_TRUE(created.ok());
      v1::JobRecord record = created->record;
      record.mutable_job()->set_state(state);
      if (state == v1::RUNNING) {
        v1::RankPlacement* rank = record.add_placement();
        rank->set_worker_id("w1");
        rank->add_slots(0);
      }
      ASSERT_TRUE(store->PutJobWithEvent(record, MakeEvent(state, "moved")).ok());
      if (state != v1::SUCCEEDED && state != v1::FAILED && state != v1::CANCELLED) {
        active[record.job().id()] = record;
      }
    }
    // Checkpoints for the first RUNNING job (job 3) and a terminal one (job 4).
    for (int64_t step : {100, 200}) {
      v1::CheckpointRecord checkpoint;
      checkpoint.set_job_id("job-000000000003");
      checkpoint.set_step(step);
      ASSERT_TRUE(store->PutCheckpoint(checkpoint).ok());
      checkpoint.set_job_id("job-000000000004");
      ASSERT_TRUE(store->PutCheckpoint(checkpoint).ok());
    }
    v1::WorkerRecord worker;
    worker.set_id("w1");
    worker.set_slots(8);
    ASSERT_TRUE(store->PutWorker(worker).ok());
    worker.set_id("w2");
    ASSERT_TRUE(store->PutWorker(worker).ok());
  }

  auto store = OpenStore(dir.Join("db"));
  auto state = LoadAll(*store);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  ASSERT_EQ(state->active_jobs.size(), active.size());
  std::string previous;
  for (const v1::JobRecord& record : state->active_jobs) {
    EXPECT_LT(previous, record.job().id()) << "submission order";
    previous = record.job().id();
    ASSERT_TRUE(active.contains(record.job().id()));
    EXPECT_TRUE(MessageDifferencer::Equals(record, active[record.job().id()]));
  }
  ASSERT_EQ(state->latest_checkpoints.size(), 1u);
  EXPECT_EQ(state->latest_checkpoints.at("job-000000000003").step(), 200);
  ASSERT_EQ(state->workers.size(), 2u);
  EXPECT_EQ(state->workers[0].id(), "w1");
  EXPECT_EQ(state->jobs_by_state.at(v1::RUNNING), 2);
  EXPECT_EQ(state->jobs_by_state.at(v1::SUCCEEDED), 1);
  EXPECT_EQ(state->jobs_by_state.at(v1::CANCELLED), 1);
  EXPECT_FALSE(state->jobs_by_state.contains(v1::JOB_STATE_UNSPECIFIED));
}

TEST(RecoveryTest, EmptyStore) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  auto state = LoadAll(*store);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->active_jobs.empty());
  EXPECT_TRUE(state->workers.empty());
  EXPECT_TRUE(state->jobs_by_state.empty());
}

}  // namespace
}  // namespace dyt
