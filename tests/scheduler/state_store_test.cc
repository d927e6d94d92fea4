// Round trips of every record kind through a real RocksDB directory, read back both from the
// open store and after closing and reopening it.
#include "scheduler/state_store.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::MakeEvent;
using testing::MakeJob;
using testing::OpenStore;
using testing::TempDir;

v1::WorkerRecord MakeWorker(const std::string& id, int slots) {
  v1::WorkerRecord worker;
  worker.set_id(id);
  worker.set_hostname(id + ".cluster");
  worker.set_address(id + ".cluster:7070");
  worker.set_slot_kind("gpu");
  worker.set_slots(slots);
  worker.set_memory_bytes(80ll << 30);
  worker.mutable_registered()->set_seconds(1700000000);
  (*worker.mutable_labels())["zone"] = "a";
  return worker;
}

v1::CheckpointRecord MakeCheckpoint(const std::string& job_id, int64_t step) {
  v1::CheckpointRecord checkpoint;
  checkpoint.set_job_id(job_id);
  checkpoint.set_step(step);
  checkpoint.set_attempt(1);
  checkpoint.set_path("/artifacts/" + job_id + "/step-" + std::to_string(step));
  v1::CheckpointFile* file = checkpoint.add_files();
  file->set_name("model.safetensors");
  file->set_size(1000 + step);
  file->set_sha256(std::string(64, 'a'));
  checkpoint.set_total_bytes(1000 + step);
  checkpoint.set_loss(3.5 - step * 0.001);
  return checkpoint;
}

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore(dir_.Join("db")); }
  void Reopen() {
    store_.reset();
    store_ = OpenStore(dir_.Join("db"));
  }
  TempDir dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(StateStoreTest, JobRoundTripWithoutEvents) {
  v1::JobRecord record = MakeJob("llama");
  record.mutable_job()->set_id("job-000000000007");
  record.set_client_request_id("req-7");
  v1::RankPlacement* rank = record.add_placement();
  rank->set_rank(0);
  rank->set_worker_id("w1");
  rank->add_slots(3);
  *record.mutable_job()->add_events() = MakeEvent(v1::QUEUED, "submitted");  // not stored
  ASSERT_TRUE(store_->PutJob(record).ok());

  v1::JobRecord expected = record;
  expected.mutable_job()->clear_events();
  for (int pass = 0; pass < 2; ++pass) {
    auto got = store_->GetJob("job-000000000007");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(MessageDifferencer::Equals(*got, expected)) << got->DebugString();
    Reopen();
  }
  auto missing = store_->GetJob("job-000000000008");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "job job-000000000008: not found");
  EXPECT_EQ(store_->GetJob("").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StateStoreTest, PutJobRejectsMissingIdAndState) {
  v1::JobRecord no_id = MakeJob("x");
  Status status = store_->PutJob(no_id);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "job.id: must not be empty");
  v1::JobRecord no_state = MakeJob("x", "bob", v1::JOB_STATE_UNSPECIFIED);
  no_state.mutable_job()->set_id("j");
  status = store_->PutJob(no_state);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "job.state: must be set (job j)");
}

TEST_F(StateStoreTest, EventsAreOrderedPerJobAndSurviveReopen) {
  // Interleave two jobs whose ids are string prefixes of each other.
  std::vector<uint64_t> seqs_a, seqs_b;
  for (int i = 0; i < 5; ++i) {
    auto a = store_->AppendJobEvent("job-1", MakeEvent(v1::RUNNING, "a" + std::to_string(i)));
    auto b = store_->AppendJobEvent("job-10", MakeEvent(v1::QUEUED, "b" + std::to_string(i)));
    ASSERT_TRUE(a.ok() && b.ok());
    seqs_a.push_back(*a);
    seqs_b.push_back(*b);
  }
  for (int pass = 0; pass < 2; ++pass) {
    auto events = store_->ListJobEvents("job-1");
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    ASSERT_EQ(events->size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ((*events)[i].seq, seqs_a[i]);
      EXPECT_EQ((*events)[i].event.reason(), "a" + std::to_string(i));
      EXPECT_EQ((*events)[i].event.state(), v1::RUNNING);
    }
    auto after = store_->ListJobEvents("job-10", seqs_b[1], 2);
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(after->size(), 2u);
    EXPECT_EQ((*after)[0].event.reason(), "b2");
    EXPECT_EQ((*after)[1].event.reason(), "b3");
    Reopen();
  }
  // Sequence numbers keep increasing after a reopen: never reused.
  auto next = store_->AppendJobEvent("job-1", MakeEvent(v1::SUCCEEDED, "done"));
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, std::max(seqs_a.back(), seqs_b.back()));
  auto none = store_->ListJobEvents("job-2");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(StateStoreTest, WorkerRoundTripListAndDelete) {
  ASSERT_TRUE(store_->PutWorker(MakeWorker("w2", 8)).ok());
  ASSERT_TRUE(store_->PutWorker(MakeWorker("w1", 4)).ok());
  Reopen();
  auto w1 = store_->GetWorker("w1");
  ASSERT_TRUE(w1.ok()) << w1.status().ToString();
  EXPECT_TRUE(MessageDifferencer::Equals(*w1, MakeWorker("w1", 4)));
  auto all = store_->ListWorkers();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id(), "w1");
  EXPECT_EQ((*all)[1].id(), "w2");
  ASSERT_TRUE(store_->DeleteWorker("w1").ok());
  ASSERT_TRUE(store_->DeleteWorker("w1").ok());  // idempotent
  Reopen();
  EXPECT_EQ(store_->GetWorker("w1").status().code(), StatusCode::kNotFound);
  all = store_->ListWorkers();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id(), "w2");
}

TEST_F(StateStoreTest, CheckpointsListInStepOrderPerJob) {
  for (int64_t step : {300, 100, 2000, 200}) {
    ASSERT_TRUE(store_->PutCheckpoint(MakeCheckpoint("job-1", step)).ok());
  }
  ASSERT_TRUE(store_->PutCheckpoint(MakeCheckpoint("job-10", 5000)).ok());
  Reopen();
  auto list = store_->ListCheckpoints("job-1");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);
  const int64_t expected_steps[] = {100, 200, 300, 2000};
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals((*list)[i], MakeCheckpoint("job-1", expected_steps[i])));
  }
  auto latest = store_->LatestCheckpoint("job-1");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->step(), 2000);
  auto one = store_->GetCheckpoint("job-1", 300);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->path(), "/artifacts/job-1/step-300");

  ASSERT_TRUE(store_->DeleteCheckpoint("job-1", 2000).ok());
  latest = store_->LatestCheckpoint("job-1");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->step(), 300);
  EXPECT_EQ(store_->GetCheckpoint("job-1", 2000).status().message(),
            "checkpoint job-1 step 2000: not found");
  EXPECT_EQ(store_->LatestCheckpoint("job-2").status().code(), StatusCode::kNotFound);

  v1::CheckpointRecord negative = MakeCheckpoint("job-1", -1);
  EXPECT_EQ(store_->PutCheckpoint(negative).message(), "checkpoint.step: must be >= 0, got -1");
}

TEST_F(StateStoreTest, RendezvousPerAttempt) {
  const std::string nccl_id(128, '\x07');  // binary values are fine
  ASSERT_TRUE(store_->SetRendezvous("job-1", 0, "nccl_id", nccl_id).ok());
  ASSERT_TRUE(store_->SetRendezvous("job-1", 0, "world", "4").ok());
  ASSERT_TRUE(store_->SetRendezvous("job-1", 1, "nccl_id", "second attempt").ok());
  Reopen();
  auto got = store_->GetRendezvous("job-1", 0, "nccl_id");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value(), nccl_id);
  EXPECT_GT(got->set().seconds(), 0);

  ASSERT_TRUE(store_->DeleteRendezvousAttempt("job-1", 0).ok());
  Reopen();
  auto gone = store_->GetRendezvous("job-1", 0, "world");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(), "rendezvous job-1 attempt 0 key world: not found");
  auto kept = store_->GetRendezvous("job-1", 1, "nccl_id");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->value(), "second attempt");

  EXPECT_EQ(store_->SetRendezvous("job-1", -1, "k", "v").message(),
            "attempt: must be >= 0, got -1");
  const std::string huge(StateBatch::kMaxRendezvousValueBytes + 1, 'x');
  EXPECT_EQ(store_->SetRendezvous("job-1", 0, "k", huge).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dyt
