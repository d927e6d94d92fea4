// JobService over a real gRPC server on 127.0.0.1 (a port the OS picks) and a real channel:
// submit, get, list, cancel, idempotent submit, validation, error codes, restart.
#include "scheduler/job_service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "tests/scheduler/service_test_util.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::Context;
using testing::OpenStore;
using testing::TempDir;
using testing::TestServer;
using testing::ValidSpec;

v1::Job Submit(TestServer& server, const v1::JobSpec& spec, const std::string& request_id = "") {
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  request.set_client_request_id(request_id);
  v1::SubmitJobResponse response;
  grpc::Status status = server.stub().SubmitJob(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.job();
}

grpc::Status Get(TestServer& server, const std::string& id, v1::Job* job) {
  v1::GetJobRequest request;
  request.set_id(id);
  return server.stub().GetJob(Context().get(), request, job);
}

grpc::Status Cancel(TestServer& server, const std::string& id, const std::string& reason,
                    v1::Job* job) {
  v1::CancelJobRequest request;
  request.set_id(id);
  request.set_reason(reason);
  return server.stub().CancelJob(Context().get(), request, job);
}

TEST(JobServiceTest, SubmitGetCancel) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());

  v1::Job job = Submit(server, ValidSpec("a"));
  EXPECT_EQ(job.id(), "job-000000000001");
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(job.spec().name(), "a");
  ASSERT_EQ(job.events_size(), 1);
  EXPECT_EQ(job.events(0).state(), v1::QUEUED);
  EXPECT_GT(job.created().seconds(), 0);

  v1::Job got;
  // With no worker registered, the scheduler says (after its next pass) why the job waits.
  for (int i = 0; i < 500 && got.reason().empty(); ++i) {
    ASSERT_TRUE(Get(server, job.id(), &got).ok());
    if (got.reason().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(got.reason(),
            "held: asks 2 ranks x 1 cpu slot; there are no schedulable cpu workers "
            "(connected, not drained nor shutting down)");
  got.clear_reason();
  EXPECT_EQ(got.SerializeAsString(), job.SerializeAsString());

  v1::Job cancelled;
  grpc::Status status = Cancel(server, job.id(), "wrong data", &cancelled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  ASSERT_EQ(cancelled.events_size(), 2);
  EXPECT_EQ(cancelled.events(1).state(), v1::CANCELLED);
  EXPECT_EQ(cancelled.events(1).reason(), "wrong data");
  auto record = store->GetJob(job.id());
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->job().state(), v1::CANCELLED);
  EXPECT_EQ(record->state_reason(), "wrong data");

  // A finished job cannot be cancelled again; the message names the state.
  status = Cancel(server, job.id(), "", &cancelled);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("CANCELLED"), std::string::npos) << status.error_message();
}

TEST(JobServiceTest, CancelStatesAndDefaultReason) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  // Jobs left in each state by an earlier scheduler run; this one reloads the unfinished ones.
  std::map<v1::JobState, std::string> ids;
  for (v1::JobState state : {v1::QUEUED, v1::SCHEDULED, v1::RUNNING, v1::SUCCEEDED, v1::FAILED}) {
    v1::JobRecord record;
    *record.mutable_job()->mutable_spec() = ValidSpec("j");
    record.mutable_job()->set_state(state);
    v1::JobEvent event;
    event.set_state(state);
    auto created = store->CreateJob(record, event);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ids[state] = created->record.job().id();
  }
  TestServer server(store.get());
  for (const auto& [state, id] : ids) {
    v1::Job out;
    grpc::Status status = Cancel(server, id, "", &out);
    if (state == v1::SUCCEEDED || state == v1::FAILED) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
      EXPECT_NE(status.error_message().find("job " + id + " is " + v1::JobState_Name(state)),
                std::string::npos)
          << status.error_message();
      EXPECT_EQ(store->GetJob(id)->job().state(), state);
    } else {
      ASSERT_TRUE(status.ok()) << v1::JobState_Name(state) << ": " << status.error_message();
      EXPECT_EQ(out.state(), v1::CANCELLED);
      EXPECT_EQ(out.events(out.events_size() - 1).reason(), "cancelled by user");
      EXPECT_EQ(store->GetJob(id)->job().state(), v1::CANCELLED);
      // A second cancel finds it finished.
      EXPECT_EQ(Cancel(server, id, "", &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    }
  }
}

TEST(JobServiceTest, IdempotentSubmit) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  v1::Job first = Submit(server, ValidSpec("a"), "req-1");
  v1::Job again = Submit(server, ValidSpec("a"), "req-1");
  EXPECT_EQ(first.id(), again.id());
  EXPECT_EQ(again.events_size(), 1);
  v1::Job other = Submit(server, ValidSpec("a"), "req-2");
  EXPECT_NE(other.id(), first.id());

  // The same request id with a different spec is a client bug, not a retry.
  v1::SubmitJobRequest request;
  *request.mutable_spec() = ValidSpec("b");
  request.set_client_request_id("req-1");
  v1::SubmitJobResponse response;
  grpc::Status status = server.stub().SubmitJob(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(status.error_message().find(first.id()), std::string::npos);

  auto page = store->ListJobs({}, 100, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->jobs.size(), 2u);
}

TEST(JobServiceTest, InvalidRequestsStoreNothing) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());

  v1::JobSpec spec = ValidSpec();
  spec.mutable_train()->set_batch_size(0);
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  request.set_client_request_id("req-bad");
  v1::SubmitJobResponse response;
  grpc::Status status = server.stub().SubmitJob(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "spec.train.batch_size: must be >= 1 (got 0)");

  request.clear_spec();
  status = server.stub().SubmitJob(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "spec: required");

  *request.mutable_spec() = ValidSpec();
  request.set_client_request_id(std::string(200, 'r'));
  status = server.stub().SubmitJob(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("client_request_id"), std::string::npos);

  auto page = store->ListJobs({}, 100, "");
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->jobs.empty());
  EXPECT_EQ(store->FindJobByRequestId("req-bad").status().code(), StatusCode::kNotFound);

  v1::Job job;
  status = Get(server, "", &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "id: required");
  v1::ListJobsRequest list;
  list.set_page_size(-1);
  v1::ListJobsResponse listed;
  status = server.stub().ListJobs(Context().get(), list, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("page_size"), std::string::npos);
  list.set_page_size(10);
  list.set_page_token("not a token");
  status = server.stub().ListJobs(Context().get(), list, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("page_token"), std::string::npos);
}

TEST(JobServiceTest, UnknownIdIsNotFound) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  v1::Job job;
  grpc::Status status = Get(server, "job-000000000099", &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("job-000000000099"), std::string::npos);
  status = Cancel(server, "nope", "", &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("nope"), std::string::npos);
}

TEST(JobServiceTest, ListFiltersAndPages) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(Submit(server, ValidSpec(i % 2 ? "odd" : "even", i < 4 ? "alice" : "bob")).id());
  }
  v1::Job cancelled;
  ASSERT_TRUE(Cancel(server, ids[2], "", &cancelled).ok());

  // All jobs, 3 per page, in submission order, each exactly once.
  std::vector<std::string> seen;
  v1::ListJobsRequest request;
  request.set_page_size(3);
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 10);
    v1::ListJobsResponse response;
    grpc::Status status = server.stub().ListJobs(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LE(response.jobs_size(), 3);
    for (const auto& job : response.jobs()) {
      seen.push_back(job.id());
      EXPECT_GE(job.events_size(), 1);
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(seen, ids);

  auto list = [&](v1::JobState state, const std::string& owner, const std::string& name) {
    v1::ListJobsRequest r;
    r.set_state(state);
    r.set_owner(owner);
    r.set_name(name);
    v1::ListJobsResponse response;
    grpc::Status status = server.stub().ListJobs(Context().get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> out;
    for (const auto& job : response.jobs()) out.push_back(job.id());
    return out;
  };
  EXPECT_EQ(list(v1::CANCELLED, "", ""), std::vector<std::string>{ids[2]});
  EXPECT_EQ(list(v1::JOB_STATE_UNSPECIFIED, "bob", ""), (std::vector{ids[4], ids[5], ids[6]}));
  EXPECT_EQ(list(v1::JOB_STATE_UNSPECIFIED, "alice", "odd"), (std::vector{ids[1], ids[3]}));
  EXPECT_EQ(list(v1::QUEUED, "alice", "even"), std::vector<std::string>{ids[0]});

  // page_size above the maximum is clamped, not refused.
  v1::ListJobsRequest big;
  big.set_page_size(1000000);
  v1::ListJobsResponse response;
  ASSERT_TRUE(server.stub().ListJobs(Context().get(), big, &response).ok());
  EXPECT_EQ(response.jobs_size(), 7);
}

TEST(JobServiceTest, JobSurvivesRestart) {
  TempDir dir;
  std::string id;
  {
    auto store = OpenStore(dir.Join("db"));
    TestServer server(store.get());
    id = Submit(server, ValidSpec("durable"), "req-d").id();
    server.Stop();
  }  // store closed
  auto store = OpenStore(dir.Join("db"));
  TestServer server(store.get());
  v1::Job job;
  grpc::Status status = Get(server, id, &job);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(job.spec().name(), "durable");
  EXPECT_EQ(job.events_size(), 1);
  // The request id index survived too: a retry after the restart finds the same job.
  EXPECT_EQ(Submit(server, ValidSpec("durable"), "req-d").id(), id);
  // And new jobs continue the numbering.
  EXPECT_GT(Submit(server, ValidSpec("next")).id(), id);
}

}  // namespace
}  // namespace dyt
