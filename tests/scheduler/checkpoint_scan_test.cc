// Checkpoints nobody reported: ScanCheckpointDir on directories written with the checkpoint
// format's own code (manifest.json, state.json), and the scheduler listing, counting and
// serving such a checkpoint over real gRPC.
#include "scheduler/checkpoint_scan.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/scheduler/service_test_util.h"
#include "tests/scheduler/test_util.h"
#include "tests/scheduler/test_worker.h"
#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_state.h"
#include "trainer/checkpoint/manifest.h"
#include "trainer/checkpoint/state_json.h"

namespace dyt {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;
using testing::Context;
using testing::GetJob;
using testing::OpenStore;
using testing::SubmitJob;
using testing::TempDir;
using testing::TestServer;
using testing::TestWorker;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

struct Saved {
  std::string job_id;
  int attempt = 1;
  int64_t state_step = -1;  // -1: the directory's step
  double loss = 2.5;
  double val_loss = NAN;
  double unix_time = 1767225600.5;
  int64_t manifest_step = -1;  // -1: the directory's step
};

// A checkpoint directory <store>/step-NNNNNNNN as the trainer commits one: the data files,
// state.json, then manifest.json describing them. Returns its path.
std::string WriteCheckpoint(const std::string& store, int64_t step, const Saved& saved) {
  const std::string dir = JoinPath(store, StepDirName(step));
  fs::create_directories(dir);
  WriteText(JoinPath(dir, kModelFile), std::string(1000 + step, 'm'));
  WriteText(JoinPath(dir, kOptimizerFile), std::string(2000, 'o'));
  CheckpointState state;
  state.model_config_json = "{\"dim\": 64}";
  state.step = saved.state_step >= 0 ? saved.state_step : step;
  state.meta.job_id = saved.job_id;
  state.meta.attempt = saved.attempt;
  state.meta.train_loss = saved.loss;
  state.meta.val_loss = saved.val_loss;
  state.meta.unix_time = saved.unix_time;
  WriteText(JoinPath(dir, kStateFile), StateToJson(state));
  Manifest manifest;
  manifest.format_version = kCheckpointFormatVersion;
  manifest.step = saved.manifest_step >= 0 ? saved.manifest_step : step;
  for (const char* name : {kModelFile, kOptimizerFile, kStateFile}) {
    auto entry = DescribeFile(dir, name);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    if (entry.ok()) manifest.files.push_back(*entry);
  }
  WriteText(JoinPath(dir, kManifestFile), ManifestToJson(manifest));
  return dir;
}

TEST(ScanCheckpointDirTest, FindsTheCompleteCheckpointsOfTheJobOnly) {
  TempDir dir;
  const std::string store = dir.Join("job-000000000007");
  const Saved mine{.job_id = "job-000000000007", .attempt = 3};
  const std::string good = WriteCheckpoint(store, 5, mine);
  // Cut short after its manifest was written (a copy gone wrong).
  const std::string cut = WriteCheckpoint(store, 6, mine);
  fs::resize_file(JoinPath(cut, kOptimizerFile), 100);
  // Another job's checkpoint copied in.
  Saved theirs = mine;
  theirs.job_id = "job-000000000008";
  WriteCheckpoint(store, 7, theirs);
  // A manifest of another step.
  Saved wrong_step = mine;
  wrong_step.manifest_step = 9;
  WriteCheckpoint(store, 8, wrong_step);
  // No manifest: the writer died before committing it.
  const std::string uncommitted = WriteCheckpoint(store, 10, mine);
  fs::remove(JoinPath(uncommitted, kManifestFile));
  // Complete but not named as a committed checkpoint: never read.
  fs::rename(WriteCheckpoint(store, 11, mine), JoinPath(store, ".tmp-step-00000011-4242"));
  fs::rename(WriteCheckpoint(store, 12, mine), JoinPath(store, "step-12"));
  WriteText(JoinPath(store, "step-00000013"), "a file, not a directory");
  // Symlinks: a step directory pointing elsewhere, a checkpoint whose file points elsewhere.
  fs::create_directory_symlink(WriteCheckpoint(dir.Join("elsewhere"), 15, mine),
                               JoinPath(store, StepDirName(15)));
  const std::string linked = WriteCheckpoint(store, 16, mine);
  fs::rename(JoinPath(linked, kModelFile), dir.Join("model-elsewhere"));
  fs::create_symlink(dir.Join("model-elsewhere"), JoinPath(linked, kModelFile));
  // Known already (in the scheduler's store): not read again.
  WriteCheckpoint(store, 14, mine);
  // Outside what the job allows: step 0, a step past its 100 steps, an attempt it has not had
  // (the job is at attempt 3), a state.json of another step than its directory.
  WriteCheckpoint(store, 0, mine);
  WriteCheckpoint(store, 101, mine);
  Saved later = mine;
  later.attempt = 4;
  WriteCheckpoint(store, 17, later);
  Saved other_step = mine;
  other_step.state_step = 1;
  WriteCheckpoint(store, 18, other_step);

  auto scan = ScanCheckpointDir(store, mine.job_id, {14}, {.max_step = 100, .max_attempt = 3});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->found.size(), 1u);
  const v1::CheckpointRecord& c = scan->found[0];
  EXPECT_EQ(c.job_id(), mine.job_id);
  EXPECT_EQ(c.step(), 5);
  EXPECT_EQ(c.attempt(), 3);
  EXPECT_EQ(c.path(), good);
  EXPECT_DOUBLE_EQ(c.loss(), 2.5);
  EXPECT_EQ(c.val_loss(), 0);  // NaN in state.json: no evaluation ran
  EXPECT_EQ(TimeUtil::TimestampToMilliseconds(c.created()), 1767225600500);
  // The manifest's files with their sizes and digests; total_bytes counts manifest.json too.
  auto manifest = ReadManifest(good);
  ASSERT_TRUE(manifest.ok());
  ASSERT_EQ(c.files_size(), 3);
  int64_t total = static_cast<int64_t>(fs::file_size(JoinPath(good, kManifestFile)));
  for (int i = 0; i < c.files_size(); ++i) {
    EXPECT_EQ(c.files(i).name(), manifest->files[i].name);
    EXPECT_EQ(c.files(i).size(), manifest->files[i].size);
    EXPECT_EQ(c.files(i).sha256(), manifest->files[i].sha256);
    total += c.files(i).size();
  }
  EXPECT_EQ(c.total_bytes(), total);

  std::map<std::string, std::string> skipped;
  for (const std::string& why : scan->skipped) skipped[why.substr(0, why.find(':'))] = why;
  ASSERT_EQ(skipped.size(), 10u) << ::testing::PrintToString(scan->skipped);
  EXPECT_NE(skipped["step-00000006"].find("optimizer.safetensors: size 100 differs from the 2000"),
            std::string::npos)
      << skipped["step-00000006"];
  EXPECT_NE(skipped["step-00000007"].find("of job 'job-000000000008'"), std::string::npos)
      << skipped["step-00000007"];
  EXPECT_NE(skipped["step-00000008"].find("names step 9"), std::string::npos)
      << skipped["step-00000008"];
  EXPECT_NE(skipped["step-00000010"].find("manifest.json missing"), std::string::npos)
      << skipped["step-00000010"];
  EXPECT_NE(skipped["step-00000015"].find("a symlink, not a checkpoint directory"),
            std::string::npos)
      << skipped["step-00000015"];
  EXPECT_NE(skipped["step-00000016"].find("model.safetensors: not a regular file"),
            std::string::npos)
      << skipped["step-00000016"];
  EXPECT_NE(skipped["step-00000000"].find("step 0: no training in it"), std::string::npos)
      << skipped["step-00000000"];
  EXPECT_NE(skipped["step-00000101"].find("past the job's 100 steps"), std::string::npos)
      << skipped["step-00000101"];
  EXPECT_NE(skipped["step-00000017"].find("names attempt 4; the job has had 3"), std::string::npos)
      << skipped["step-00000017"];
  EXPECT_NE(skipped["step-00000018"].find("state.json is of step 1"), std::string::npos)
      << skipped["step-00000018"];
}

TEST(ScanCheckpointDirTest, AMissingDirectoryHasNoCheckpoints) {
  TempDir dir;
  auto scan = ScanCheckpointDir(dir.Join("never-ran"), "job-000000000001", {}, {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_TRUE(scan->found.empty());
  EXPECT_TRUE(scan->skipped.empty());
  // A job directory that is a symlink (to checkpoints elsewhere) is not read.
  WriteCheckpoint(dir.Join("elsewhere"), 3, {.job_id = "job-000000000001"});
  fs::create_directory_symlink(dir.Join("elsewhere"), dir.Join("linked"));
  scan = ScanCheckpointDir(dir.Join("linked"), "job-000000000001", {}, {.max_attempt = 1});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_TRUE(scan->found.empty());
  ASSERT_EQ(scan->skipped.size(), 1u);
  EXPECT_NE(scan->skipped[0].find("a symlink, not the job's artifact directory"),
            std::string::npos);
}

// state.json from before meta.attempt existed reads as attempt 0 ("-" in dytctl's table).
TEST(ScanCheckpointDirTest, AStateWithoutAnAttemptIsAttemptZero) {
  TempDir dir;
  const std::string store = dir.Join("job-000000000002");
  const std::string ckpt = WriteCheckpoint(store, 4, {.job_id = "job-000000000002"});
  CheckpointState state;
  state.model_config_json = "{}";
  state.step = 4;
  state.meta.job_id = "job-000000000002";
  std::string json = StateToJson(state);
  const std::string field = "\"attempt\": 0,";
  ASSERT_NE(json.find(field), std::string::npos) << json;
  json.erase(json.find(field), field.size());
  CheckpointState read;
  ASSERT_TRUE(StateFromJson(json, &read).ok());
  EXPECT_EQ(read.meta.attempt, 0);
  // A negative attempt is refused, naming the field.
  std::string negative = StateToJson(state);
  negative.replace(negative.find(field), field.size(), "\"attempt\": -1,");
  Status bad = StateFromJson(negative, &read);
  EXPECT_EQ(bad.code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.message().find("meta.attempt"), std::string::npos) << bad.ToString();
  // The scan takes the state's attempt as it is.
  WriteText(JoinPath(ckpt, kStateFile), json);
  Manifest manifest;
  manifest.format_version = kCheckpointFormatVersion;
  manifest.step = 4;
  for (const char* name : {kModelFile, kStateFile})
    manifest.files.push_back(*DescribeFile(ckpt, name));
  WriteText(JoinPath(ckpt, kManifestFile), ManifestToJson(manifest));
  auto scan = ScanCheckpointDir(store, "job-000000000002", {}, {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->found.size(), 1u) << ::testing::PrintToString(scan->skipped);
  EXPECT_EQ(scan->found[0].attempt(), 0);
}

std::vector<int64_t> ListedSteps(TestServer& server, const std::string& id) {
  v1::ListCheckpointsRequest request;
  request.set_job_id(id);
  v1::ListCheckpointsResponse response;
  grpc::Status status = server.stub().ListCheckpoints(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::vector<int64_t> steps;
  for (const auto& c : response.checkpoints()) steps.push_back(c.step());
  return steps;
}

// A trainer checkpoints on the SIGTERM it gets when its worker dies; nobody reports that
// checkpoint. The scheduler finds it in the job's artifact directory: listed with what
// state.json says, counted in last_checkpoint_step, and served for download.
TEST(SchedulerCheckpointsTest, ACheckpointNoWorkerReportedIsListedAndServed) {
  TempDir dir;
  auto store = OpenStore(dir.Join("db"));
  SchedulerOptions options;
  options.artifact_root = dir.Join("artifacts");
  TestServer server(store.get(), {}, options);
  TestWorker worker(server.port(), "w1", 1);
  v1::JobSpec spec = testing::ValidSpec("orphans");
  spec.mutable_resources()->set_ranks(1);
  const std::string id = SubmitJob(server, spec);
  auto a = worker.TakeAssignment(id);
  ASSERT_TRUE(a);
  worker.StartAll(*a);
  EXPECT_TRUE(ListedSteps(server, id).empty());

  WriteCheckpoint(a->checkpoint_dir(), 5, {.job_id = id, .attempt = a->attempt(), .loss = 3.25});
  EXPECT_EQ(ListedSteps(server, id), std::vector<int64_t>({5}));
  EXPECT_EQ(GetJob(server, id).last_checkpoint_step(), 5);
  EXPECT_EQ(ListedSteps(server, id), std::vector<int64_t>({5}));  // found once

  // One the worker reports keeps the worker's record.
  const std::string reported =
      WriteCheckpoint(a->checkpoint_dir(), 10, {.job_id = id, .attempt = a->attempt()});
  v1::WorkerMessage m;
  v1::CheckpointRecord* c = m.mutable_checkpoint()->mutable_checkpoint();
  c->set_job_id(id);
  c->set_step(10);
  c->set_attempt(a->attempt());
  c->set_path(reported);
  c->set_loss(1.5);
  worker.Send(m);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (GetJob(server, id).last_checkpoint_step() != 10 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ListedSteps(server, id), std::vector<int64_t>({5, 10}));
  ASSERT_TRUE(store->GetCheckpoint(id, 10).ok());
  EXPECT_DOUBLE_EQ(store->GetCheckpoint(id, 10)->loss(), 1.5);

  // After the job ended (cancelled; its rank then died with its worker, checkpointing).
  v1::CancelJobRequest cancel;
  cancel.set_id(id);
  v1::Job cancelled;
  ASSERT_TRUE(server.stub().CancelJob(Context().get(), cancel, &cancelled).ok());
  WriteCheckpoint(a->checkpoint_dir(), 12, {.job_id = id, .attempt = a->attempt(), .loss = 1.25});
  EXPECT_EQ(ListedSteps(server, id), std::vector<int64_t>({5, 10, 12}));
  v1::Job job = GetJob(server, id);
  EXPECT_EQ(job.state(), v1::CANCELLED);
  EXPECT_EQ(job.last_checkpoint_step(), 12);
  auto stored = store->GetCheckpoint(id, 12);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->attempt(), a->attempt());
  EXPECT_DOUBLE_EQ(stored->loss(), 1.25);

  // Served like any other: the header names step 12, the bytes are the files' own.
  v1::DownloadCheckpointRequest download;
  download.set_job_id(id);
  download.set_file(kModelFile);
  auto context = Context();
  auto reader = server.stub().DownloadCheckpoint(context.get(), download);
  v1::DownloadCheckpointResponse chunk;
  std::string model;
  int64_t header_step = -1;
  while (reader->Read(&chunk)) {
    if (chunk.has_checkpoint()) header_step = chunk.checkpoint().step();
    if (chunk.file() == kModelFile) model += chunk.data();
  }
  grpc::Status finished = reader->Finish();
  ASSERT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_EQ(header_step, 12);
  EXPECT_EQ(model, std::string(1000 + 12, 'm'));
}

}  // namespace
}  // namespace dyt
