// SubmitJob retried on UNAVAILABLE reuses its client_request_id, so a lost answer does not
// create a second job: a real JobService whose first answer is replaced by UNAVAILABLE after
// the job was stored (as when the connection breaks after the server committed).
#include <gtest/gtest.h>

#include <atomic>

#include "scheduler/job_service.h"
#include "scheduler/scheduler.h"
#include "scheduler/state_store.h"
#include "services/cli/client.h"
#include "services/cli/commands.h"
#include "services/cli/job_spec_yaml.h"
#include "tests/common/temp_dir.h"

namespace dyt::cli {
namespace {

// A JobService that delegates to the real JobServiceImpl (which is final) and replaces the
// answers of the first two SubmitJob calls with UNAVAILABLE.
class LosesFirstAnswers : public v1::JobService::Service {
 public:
  explicit LosesFirstAnswers(StateStore* store)
      : scheduler_(store, SchedulerOptions{}), real_(store, &scheduler_) {
    started = scheduler_.Start().ok();
  }
  ~LosesFirstAnswers() override { scheduler_.Stop(); }
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override {
    auto job = real_.Submit(*request);
    grpc::Status status = ToGrpcStatus(job.status());
    if (job.ok()) *response->mutable_job() = *job;
    request_ids.push_back(request->client_request_id());
    if (calls.fetch_add(1) < 2) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "lost");
    return status;
  }
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override {
    return real_.ListJobs(context, request, response);
  }
  std::atomic<int> calls{0};
  std::vector<std::string> request_ids;
  bool started = false;

 private:
  Scheduler scheduler_;
  JobServiceImpl real_;
};

TEST(SubmitRetryTest, RetriesWithTheSameRequestIdAndCreatesOneJob) {
  ::dyt::testing::TempDir dir;
  auto store = StateStore::Open(dir.Join("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  LosesFirstAnswers service(store->get());
  ASSERT_TRUE(service.started);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  ClientConfig config;
  config.server = "127.0.0.1:" + std::to_string(port);
  DytClient client(config);
  ASSERT_TRUE(client.Connect().ok());
  auto file = LoadJobSpecFile(DYT_SOURCE_DIR "/examples/jobs/tiny-cpu-synthetic.yaml", "r");
  ASSERT_TRUE(file.ok());
  const std::string request_id = NewClientRequestId();
  SubmitRetryPolicy retry;
  retry.first_backoff_s = 0.01;
  auto job = client.Submit(file->spec, request_id, retry);
  ASSERT_TRUE(job.ok()) << job.status().message();
  EXPECT_EQ(service.calls.load(), 3);
  ASSERT_EQ(service.request_ids.size(), 3u);
  for (const auto& id : service.request_ids) EXPECT_EQ(id, request_id);
  v1::ListJobsRequest all;
  auto jobs = client.ListAll(all);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].id(), job->id());

  // Out of attempts: the error says the server could not be reached.
  service.calls = -10;
  retry.attempts = 2;
  auto failed = client.Submit(file->spec, NewClientRequestId(), retry);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.status().message().find("cannot reach the dyt scheduler at " + config.server),
            std::string::npos);
  server->Shutdown();
}

TEST(SubmitRetryTest, RequestIdsAreFreshAndValid) {
  std::string a = NewClientRequestId(), b = NewClientRequestId();
  EXPECT_NE(a, b);
  EXPECT_TRUE(JobSpecValidator::ValidateClientRequestId(a).ok());
  EXPECT_EQ(a.rfind("dytctl-", 0), 0u);
}

}  // namespace
}  // namespace dyt::cli
