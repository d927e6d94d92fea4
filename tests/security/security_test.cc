// The real dyt-scheduler with TLS (certificates from scripts/dyt-certs.sh) and bearer tokens,
// over real loopback connections: authentication, roles, per-user job isolation, worker
// tokens and rendezvous, path confinement, and that no token reaches the scheduler's log.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "tests/security/secure_scheduler.h"

namespace dyt::security_testing {
namespace {

TEST_F(SecurityTest, FirstStartWritesTheAdminTokenPrivatelyAndLogsOnlyThePath) {
  struct stat st {};
  ASSERT_EQ(::stat(dir_.Join("db/admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(Log().find(dir_.Join("db/admin.token")), std::string::npos) << Log();
  EXPECT_TRUE(WhoAmI(admin_).ok());
}

TEST_F(SecurityTest, NoOrBadTokenIsUnauthenticated) {
  EXPECT_EQ(Get("", "job-000000000001").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Submit("", Spec("a", TrainPath())).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(WhoAmI("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status bad = Get("dyt_" + std::string(64, 'a'), "job-000000000001");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Neither the Connect stream nor rendezvous take a missing token.
  grpc::ClientContext context;
  context.set_deadline(In(30));
  v1::GetRendezvousRequest request;
  request.set_job_id("job-000000000001");
  request.set_key("k");
  v1::GetRendezvousResponse response;
  EXPECT_EQ(v1::WorkerService::NewStub(Channel(""))
                ->GetRendezvous(&context, request, &response)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityTest, ExpiredAndRevokedTokensAreUnauthenticated) {
  std::string shortlived = Token("alice", "user", 1);
  grpc::Status status;
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  do {
    status = WhoAmI(shortlived);
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("expired"), std::string::npos) << status.error_message();

  std::string bob = Token("bob", "user");
  ASSERT_TRUE(WhoAmI(bob).ok());
  grpc::ClientContext list_context;
  list_context.set_deadline(In(30));
  v1::ListTokensResponse list;
  ASSERT_TRUE(Auth(admin_)->ListTokens(&list_context, v1::ListTokensRequest(), &list).ok());
  std::string bob_id;
  for (const auto& t : list.tokens()) {
    if (t.user() == "bob") bob_id = t.id();
    EXPECT_EQ(t.id().size(), 16u);
  }
  ASSERT_FALSE(bob_id.empty());
  grpc::ClientContext revoke_context;
  revoke_context.set_deadline(In(30));
  v1::RevokeTokenRequest revoke;
  revoke.set_id(bob_id);
  v1::TokenInfo revoked;
  ASSERT_TRUE(Auth(admin_)->RevokeToken(&revoke_context, revoke, &revoked).ok());
  EXPECT_TRUE(revoked.revoked());
  status = Get(bob, "job-000000000001");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("revoked"), std::string::npos);
  // Only an admin manages tokens.
  std::string alice = Token("alice", "user");
  grpc::ClientContext denied_context;
  denied_context.set_deadline(In(30));
  v1::ListTokensResponse denied;
  EXPECT_EQ(Auth(alice)->ListTokens(&denied_context, v1::ListTokensRequest(), &denied).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(SecurityTest, UsersSeeOnlyTheirOwnJobs) {
  std::string alice = Token("alice", "user");
  std::string bob = Token("bob", "user");
  v1::Job job;
  ASSERT_TRUE(Submit(bob, Spec("bobs", TrainPath()), &job).ok());
  EXPECT_EQ(job.spec().owner(), "bob");  // the token's user, not what the spec said
  const std::string id = job.id();
  ASSERT_TRUE(Get(bob, id).ok());

  // Another user's job answers exactly like a job that does not exist.
  grpc::Status get = Get(alice, id);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(get.error_message(), "job " + id + ": not found");
  EXPECT_EQ(Cancel(alice, id).error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::WatchJobRequest request;
    request.set_id(id);
    auto reader = Jobs(alice)->WatchJob(&context, request);
    v1::WatchJobResponse response;
    EXPECT_FALSE(reader->Read(&response));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::GetJobLogsRequest request;
    request.set_id(id);
    auto reader = Jobs(alice)->GetJobLogs(&context, request);
    v1::GetJobLogsResponse response;
    EXPECT_FALSE(reader->Read(&response));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::ListCheckpointsRequest request;
    request.set_job_id(id);
    v1::ListCheckpointsResponse response;
    EXPECT_EQ(Jobs(alice)->ListCheckpoints(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::DownloadCheckpointRequest request;
    request.set_job_id(id);
    auto reader = Jobs(alice)->DownloadCheckpoint(&context, request);
    v1::DownloadCheckpointResponse response;
    EXPECT_FALSE(reader->Read(&response));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::ListJobsRequest request;
    v1::ListJobsResponse response;
    ASSERT_TRUE(Jobs(alice)->ListJobs(&context, request, &response).ok());
    EXPECT_EQ(response.jobs_size(), 0);  // bob's job is not among alice's
  }
  {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::ListJobsRequest request;
    request.set_owner("bob");  // asking for another owner's jobs is refused, saying why
    v1::ListJobsResponse response;
    grpc::Status status = Jobs(alice)->ListJobs(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(status.error_message().find("owner: role user lists only its own jobs"),
              std::string::npos)
        << status.error_message();
  }
  // The owner can cancel it; so can an admin (tested through the owner here).
  EXPECT_TRUE(Cancel(bob, id).ok());
}

// Request ids are per owner: bob reusing alice's id gets his own job, learns nothing of hers,
// and cannot squat on ids she will use.
TEST_F(SecurityTest, RequestIdsArePerOwner) {
  std::string alice = Token("alice", "user");
  std::string bob = Token("bob", "user");
  auto submit = [&](const std::string& token, const std::string& name, v1::Job* job) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::SubmitJobRequest request;
    *request.mutable_spec() = Spec(name, TrainPath());
    request.set_client_request_id("shared-rid-1");
    v1::SubmitJobResponse response;
    grpc::Status status = Jobs(token)->SubmitJob(&context, request, &response);
    *job = response.job();
    return status;
  };
  v1::Job hers, his, again;
  ASSERT_TRUE(submit(alice, "hers", &hers).ok());
  grpc::Status status = submit(bob, "his", &his);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(his.id(), hers.id());
  EXPECT_EQ(his.spec().owner(), "bob");
  ASSERT_TRUE(submit(alice, "hers", &again).ok());  // her retry still finds hers
  EXPECT_EQ(again.id(), hers.id());
}

TEST_F(SecurityTest, ViewerReadsEverythingButCannotCancelOrSubmit) {
  std::string bob = Token("bob", "user");
  std::string viewer = Token("vic", "viewer");
  v1::Job job;
  ASSERT_TRUE(Submit(bob, Spec("bobs", TrainPath()), &job).ok());
  EXPECT_TRUE(Get(viewer, job.id()).ok());
  grpc::Status cancel = Cancel(viewer, job.id());
  EXPECT_EQ(cancel.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(cancel.error_message(), "role viewer may not cancel jobs");
  EXPECT_EQ(Submit(viewer, Spec("v", TrainPath())).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::Job after;
  ASSERT_TRUE(Get(bob, job.id(), &after).ok());
  EXPECT_EQ(after.state(), v1::QUEUED);
}

// An audit trail: refused calls (with the peer's address), refused actions (who, what, the
// answer, also another user's job answered as missing), and who cancelled, drained, made and
// revoked what. Never a token.
TEST_F(SecurityTest, RefusalsAndAdminActionsAreLoggedWithWhoDidThem) {
  std::string bob = Token("bob", "user");
  std::string alice = Token("alice", "user");
  std::string vic = Token("vic", "viewer");
  v1::Job job;
  ASSERT_TRUE(Submit(bob, Spec("bobs", TrainPath()), &job).ok());
  EXPECT_EQ(WhoAmI("dyt_" + std::string(64, '0')).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Cancel(vic, job.id()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get(alice, job.id()).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Cancel(admin_, job.id()).ok());
  ASSERT_TRUE(Revoke(TokenId(vic)).ok());
  const std::string log = Log();
  for (const std::string& line :
       {std::string("refused a call from ipv4:127.0.0.1:"),
        "refused cancel jobs to vic (viewer, token " + TokenIdOf(vic) +
            "): PERMISSION_DENIED: role viewer may not cancel jobs",
        "refused read jobs to alice (user, token " + TokenIdOf(alice) + "): NOT_FOUND: job " +
            job.id() + ": not found",
        "job " + job.id() + " cancelled by admin (admin, token " + TokenIdOf(admin_) + ")",
        "token " + TokenIdOf(vic) + " of user vic revoked by admin (admin, token "}) {
    EXPECT_NE(log.find(line), std::string::npos) << line << "\n" << log;
  }
}

TEST_F(SecurityTest, WorkerTokensOnlyServeTheirWorkerAndItsAttempts) {
  std::string w1 = Token("w1", "worker");
  std::string w2 = Token("w2", "worker");
  std::string alice = Token("alice", "user");
  EXPECT_EQ(Submit(w1, Spec("nope", TrainPath())).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get(w1, "job-000000000001").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // A user token cannot act as a worker.
  {
    grpc::ClientContext context;
    auto stream = v1::WorkerService::NewStub(Channel(alice))->Connect(&context);
    v1::SchedulerMessage message;
    EXPECT_FALSE(stream->Read(&message));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // w1's token cannot register as w2.
  {
    grpc::ClientContext context;
    auto stream = v1::WorkerService::NewStub(Channel(w1))->Connect(&context);
    v1::WorkerMessage reg = Registration("w2");
    stream->Write(reg);
    stream->WritesDone();
    v1::SchedulerMessage message;
    EXPECT_FALSE(stream->Read(&message));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // w1 registers as itself and gets alice's job.
  grpc::ClientContext context;
  context.set_deadline(In(90));
  auto stream = v1::WorkerService::NewStub(Channel(w1))->Connect(&context);
  v1::WorkerMessage reg = Registration("w1");
  ASSERT_TRUE(stream->Write(reg));
  v1::SchedulerMessage message;
  ASSERT_TRUE(stream->Read(&message));
  ASSERT_TRUE(message.has_registered());
  v1::Job job;
  ASSERT_TRUE(Submit(alice, Spec("run", TrainPath()), &job).ok());
  v1::Assignment assignment;
  while (stream->Read(&message)) {
    if (message.has_assign()) {
      assignment = message.assign();
      break;
    }
  }
  ASSERT_EQ(assignment.job_id(), job.id());

  // Workers are listed for every user, but a user sees only its own jobs on them.
  std::string bob = Token("bob", "user");
  auto jobs_on_w1 = [&](const std::string& token) {
    grpc::ClientContext c;
    c.set_deadline(In(30));
    v1::ListWorkersResponse list;
    EXPECT_TRUE(Jobs(token)->ListWorkers(&c, v1::ListWorkersRequest(), &list).ok());
    std::vector<std::string> ids;
    for (const auto& w : list.workers()) {
      if (w.id() == "w1") ids.assign(w.job_ids().begin(), w.job_ids().end());
    }
    return ids;
  };
  EXPECT_EQ(jobs_on_w1(alice), std::vector<std::string>{job.id()});
  EXPECT_EQ(jobs_on_w1(admin_), std::vector<std::string>{job.id()});
  EXPECT_EQ(jobs_on_w1(bob), std::vector<std::string>{});

  auto set = [&](const std::string& token, const std::string& job_id) {
    grpc::ClientContext c;
    c.set_deadline(In(30));
    v1::SetRendezvousRequest request;
    request.set_job_id(job_id);
    request.set_attempt(assignment.attempt());
    request.set_key("rank_0");
    request.set_value("addr");
    v1::SetRendezvousResponse response;
    return v1::WorkerService::NewStub(Channel(token))->SetRendezvous(&c, request, &response);
  };
  auto get = [&](const std::string& token, const std::string& job_id, std::string* value) {
    grpc::ClientContext c;
    c.set_deadline(In(30));
    v1::GetRendezvousRequest request;
    request.set_job_id(job_id);
    request.set_attempt(assignment.attempt());
    request.set_key("rank_0");
    v1::GetRendezvousResponse response;
    grpc::Status s =
        v1::WorkerService::NewStub(Channel(token))->GetRendezvous(&c, request, &response);
    if (value != nullptr) *value = response.value();
    return s;
  };
  ASSERT_TRUE(set(w1, job.id()).ok());
  std::string value;
  ASSERT_TRUE(get(w1, job.id(), &value).ok());
  EXPECT_EQ(value, "addr");
  // Another worker cannot read or write that attempt's rendezvous, nor can a user.
  EXPECT_EQ(get(w2, job.id(), nullptr).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(set(w2, job.id()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(get(alice, job.id(), nullptr).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  context.TryCancel();
  stream->Finish().IgnoreError();
}

// What a revocation does to streams opened before it: a worker's session ends at its next
// message (heartbeats come every second) and gets no more jobs; a watch ends within a second.
TEST_F(SecurityTest, RevokingATokenEndsItsOpenStreams) {
  std::string w1 = Token("w1", "worker");
  std::string alice = Token("alice", "user");
  grpc::ClientContext worker_context;
  worker_context.set_deadline(In(60));
  auto session = v1::WorkerService::NewStub(Channel(w1))->Connect(&worker_context);
  v1::WorkerMessage reg = Registration("w1");
  ASSERT_TRUE(session->Write(reg));
  v1::SchedulerMessage message;
  ASSERT_TRUE(session->Read(&message));
  ASSERT_TRUE(message.has_registered());
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat();
  ASSERT_TRUE(session->Write(heartbeat));

  const std::string w1_id = TokenId(w1);
  ASSERT_FALSE(w1_id.empty());
  ASSERT_TRUE(Revoke(w1_id).ok());
  // A job that fits w1, submitted before w1 says anything again: it may be placed on w1, but
  // the assignment is not sent; w1's next message ends the session UNAUTHENTICATED.
  v1::Job job;
  ASSERT_TRUE(Submit(alice, Spec("held", TrainPath()), &job).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  session->Write(heartbeat);
  while (session->Read(&message)) {
    EXPECT_FALSE(message.has_assign()) << "a revoked worker got job " << message.assign().job_id();
  }
  grpc::Status ended = session->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAUTHENTICATED) << ended.error_message();
  EXPECT_NE(ended.error_message().find("revoked"), std::string::npos) << ended.error_message();

  grpc::ClientContext watch_context;
  watch_context.set_deadline(In(60));
  v1::WatchJobRequest watch;
  watch.set_id(job.id());
  auto watcher = Jobs(alice)->WatchJob(&watch_context, watch);
  v1::WatchJobResponse update;
  ASSERT_TRUE(watcher->Read(&update));
  EXPECT_EQ(update.job().id(), job.id());
  ASSERT_TRUE(Revoke(TokenId(alice)).ok());
  const auto revoked_at = std::chrono::steady_clock::now();
  while (watcher->Read(&update)) {
  }
  grpc::Status watch_status = watcher->Finish();
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << watch_status.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at, seconds(10));
}

// At least one admin token that never expires always remains, so the cluster can never be
// locked out of token management.
TEST_F(SecurityTest, TheLastLastingAdminTokenCannotBeRevoked) {
  const std::string first = TokenId(admin_);
  ASSERT_FALSE(first.empty());
  grpc::Status refused = Revoke(first);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("last admin token"), std::string::npos)
      << refused.error_message();
  // An admin token that expires does not count as the one left.
  Token("ops", "admin", 3600);
  EXPECT_EQ(Revoke(first).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const std::string lasting = Token("ops2", "admin");
  ASSERT_TRUE(Revoke(first).ok());
  EXPECT_EQ(WhoAmI(admin_).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  admin_ = lasting;
  EXPECT_EQ(Revoke(TokenId(lasting)).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(WhoAmI(lasting).ok());
}

// gRPC would let a second server bind the same port (SO_REUSEPORT) and take a share of the
// connections; dyt-scheduler turns that off, so a second one fails and says why.
TEST_F(SecurityTest, ASecondSchedulerOnTheSamePortFailsToStart) {
  auto second = proc::Run({DYT_SCHEDULER_BINARY, "--listen", address_, "--data-dir",
                           dir_.Join("db2"), "--insecure", "--data-root", data_root_},
                          {}, seconds(60));
  EXPECT_EQ(second.code, 1) << second.err;
  EXPECT_NE(second.err.find("--listen " + address_), std::string::npos) << second.err;
  EXPECT_TRUE(WhoAmI(admin_).ok());  // the first one still answers
}

// A certificate and key that cannot serve TLS are named at start (exit 2, before the store
// and its admin token exist), not reported later as a port that cannot be listened on.
TEST_F(SecurityTest, TlsFilesThatCannotServeAreRefusedAtStartNamingTheFlag) {
  const std::string other = dir_.Join("other-certs");
  ASSERT_EQ(
      proc::Run({"/bin/bash", std::string(DYT_SOURCE_DIR) + "/scripts/dyt-certs.sh", other}).code,
      0);
  const std::string crt = certs_ + "/server.crt", key = certs_ + "/server.key";
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {crt, other + "/server.key",
       "--tls-key " + other +
           "/server.key is not the private key of "
           "--tls-cert " +
           crt},
      {crt, crt, "--tls-key " + crt + ": not a PEM private key"},
      {key, key, "--tls-cert " + key + ": not a PEM certificate"},
      {certs_ + "/ca.crt", key, "is not the private key of --tls-cert " + certs_ + "/ca.crt"},
      {dir_.Join("missing.crt"), key, "--tls-cert " + dir_.Join("missing.crt") + ": not a "},
      {crt, certs_, "--tls-key " + certs_ + ": not a readable file"},
  };
  for (const auto& [cert, private_key, says] : cases) {
    const std::string db = dir_.Join("refused-db");
    auto r = proc::Run({DYT_SCHEDULER_BINARY, "--listen", "127.0.0.1:0", "--data-dir", db,
                        "--tls-cert", cert, "--tls-key", private_key},
                       {}, seconds(60));
    EXPECT_EQ(r.code, 2) << says << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(db)) << "the store was created before the TLS check";
  }
}

TEST_F(SecurityTest, PlaintextClientCannotTalkToTheTlsServer) {
  auto stub =
      v1::JobService::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(In(10));
  v1::GetJobRequest request;
  request.set_id("job-000000000001");
  v1::Job job;
  grpc::Status status = stub->GetJob(&context, request, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // dytctl says what is wrong: no CA file at all, or a CA that did not sign the certificate.
  std::vector<std::string> env = {"HOME=" + dir_.Join("nohome"),
                                  "DYT_CONFIG=", "DYT_TOKEN=" + admin_,
                                  "DYT_CA_FILE=", "DYT_SERVER=" + address_};
  auto plain = proc::Run({DYT_DYTCTL_BINARY, "list"}, env);
  EXPECT_EQ(plain.code, 1);
  EXPECT_NE(plain.err.find("a scheduler serving TLS needs --ca-file"), std::string::npos)
      << plain.err;
  auto other = proc::Run(
      {"/bin/bash", std::string(DYT_SOURCE_DIR) + "/scripts/dyt-certs.sh", dir_.Join("other")});
  ASSERT_EQ(other.code, 0) << other.err;
  env[3] = "DYT_CA_FILE=" + dir_.Join("other/ca.crt");
  auto wrong_ca = proc::Run({DYT_DYTCTL_BINARY, "list"}, env);
  EXPECT_EQ(wrong_ca.code, 1);
  EXPECT_NE(wrong_ca.err.find("the TLS handshake failed: is " + dir_.Join("other/ca.crt")),
            std::string::npos)
      << wrong_ca.err;
  // One line, dytctl's: no gRPC log lines ("E1129 ... Handshake failed") around it.
  EXPECT_EQ(wrong_ca.err.rfind("dytctl: ", 0), 0u) << wrong_ca.err;
  EXPECT_EQ(std::count(wrong_ca.err.begin(), wrong_ca.err.end(), '\n'), 1) << wrong_ca.err;
}

TEST_F(SecurityTest, PathTraversalIsInvalidArgument) {
  std::string alice = Token("alice", "user");
  for (const std::string& path : {data_root_ + "/../outside/x.bin", data_root_ + "/escape/x.bin",
                                  std::string("/etc/passwd"), std::string("shards/relative.bin")}) {
    grpc::Status status = Submit(alice, Spec("t", path));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
    EXPECT_NE(status.error_message().find("spec.data.train_paths[0]"), std::string::npos)
        << status.error_message();
  }
  v1::Job job;
  ASSERT_TRUE(Submit(alice, Spec("ok", TrainPath()), &job).ok());
  for (const char* file : {"../../etc/passwd", "a/b", "..", "/etc/passwd"}) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::DownloadCheckpointRequest request;
    request.set_job_id(job.id());
    request.set_file(file);
    auto reader = Jobs(alice)->DownloadCheckpoint(&context, request);
    v1::DownloadCheckpointResponse response;
    EXPECT_FALSE(reader->Read(&response));
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << file;
    EXPECT_NE(status.error_message().find("file:"), std::string::npos) << status.error_message();
  }
}

// An error that quotes a huge request field is cut: the client gets the INVALID_ARGUMENT, not
// a RESOURCE_EXHAUSTED for a response header over its limit.
TEST_F(SecurityTest, AnErrorQuotingAHugeFieldIsCutNotLost) {
  std::string alice = Token("alice", "user");
  v1::Job job;
  ASSERT_TRUE(Submit(alice, Spec("ok", TrainPath()), &job).ok());
  grpc::ClientContext context;
  context.set_deadline(In(30));
  v1::DownloadCheckpointRequest request;
  request.set_job_id(job.id());
  request.set_file(std::string(20000, 'f') + "/x");
  auto reader = Jobs(alice)->DownloadCheckpoint(&context, request);
  v1::DownloadCheckpointResponse response;
  EXPECT_FALSE(reader->Read(&response));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_LT(status.error_message().size(), 2200u);
  EXPECT_NE(status.error_message().find("more bytes of this message cut)"), std::string::npos)
      << status.error_message();
}

TEST_F(SecurityTest, QueuedJobsPerUserAreLimited) {
  std::string alice = Token("alice", "user");
  std::string bob = Token("bob", "user");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Submit(alice, Spec("q", TrainPath())).ok()) << i;
  grpc::Status over = Submit(alice, Spec("q", TrainPath()));
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(over.error_message().find("owner alice"), std::string::npos) << over.error_message();
  EXPECT_TRUE(Submit(bob, Spec("q", TrainPath())).ok());  // per user
}

TEST_F(SecurityTest, DytctlLoginSavesThePrivateConfigAndUsesTls) {
  std::string alice = Token("alice", "user");
  std::string config = dir_.Join("home/.config/dyt/config.yaml");
  std::vector<std::string> env = {"HOME=" + dir_.Join("home"),
                                  "DYT_CONFIG=", "DYT_TOKEN=", "DYT_CA_FILE=", "DYT_SERVER="};
  auto login = proc::Run({DYT_DYTCTL_BINARY, "--server", address_, "login", "--token", alice,
                          "--ca-file", certs_ + "/ca.crt"},
                         env);
  ASSERT_EQ(login.code, 0) << login.err;
  EXPECT_NE(login.out.find("as alice (user)"), std::string::npos) << login.out;
  EXPECT_NE(login.err.find("warning: a token given on the command line can be seen by other "
                           "users"),
            std::string::npos)
      << login.err;
  // From stdin: no warning, the same result.
  auto piped = proc::Run(
      {"/bin/sh", "-c",
       "printf '%s\\n' \"$T\" | \"$DYTCTL\" --server \"$ADDR\" login --token - "
       "--ca-file \"$CA\""},
      {env[0], env[1], env[2], env[3], env[4], "T=" + alice,
       std::string("DYTCTL=") + DYT_DYTCTL_BINARY, "ADDR=" + address_, "CA=" + certs_ + "/ca.crt"});
  ASSERT_EQ(piped.code, 0) << piped.err;
  EXPECT_NE(piped.out.find("as alice (user)"), std::string::npos) << piped.out;
  EXPECT_EQ(piped.err.find("warning"), std::string::npos) << piped.err;
  struct stat st {};
  ASSERT_EQ(::stat(config.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(login.out.find(alice), std::string::npos);  // never echoed

  auto list = proc::Run({DYT_DYTCTL_BINARY, "list"}, env);
  EXPECT_EQ(list.code, 0) << list.err;
  auto tokens = proc::Run({DYT_DYTCTL_BINARY, "token", "list"}, env);
  EXPECT_EQ(tokens.code, 1);
  EXPECT_NE(tokens.err.find("role user may not manage tokens"), std::string::npos) << tokens.err;
  auto drain = proc::Run({DYT_DYTCTL_BINARY, "workers", "drain", "w1"}, env);
  EXPECT_EQ(drain.code, 1);
  EXPECT_NE(drain.err.find("role user may not manage workers"), std::string::npos) << drain.err;

  // The admin creates a token with dytctl; it is printed once, on stdout alone.
  std::vector<std::string> admin_env = {
      "HOME=" + dir_.Join("nohome"), "DYT_CONFIG=", "DYT_TOKEN=" + admin_,
      "DYT_CA_FILE=" + certs_ + "/ca.crt", "DYT_SERVER=" + address_};
  auto created = proc::Run({DYT_DYTCTL_BINARY, "token", "create", "--user", "carol", "--role",
                            "viewer", "--expires", "30d"},
                           admin_env);
  ASSERT_EQ(created.code, 0) << created.err;
  std::string carol = created.out.substr(0, created.out.find('\n'));
  tokens_.push_back(carol);
  EXPECT_EQ(carol.rfind("dyt_", 0), 0u);
  EXPECT_TRUE(WhoAmI(carol).ok());
  // --output json token list: one document, like list and workers.
  auto listed = proc::Run({DYT_DYTCTL_BINARY, "--output", "json", "token", "list"}, admin_env);
  ASSERT_EQ(listed.code, 0) << listed.err;
  auto doc = nlohmann::json::parse(listed.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << listed.out;
  ASSERT_TRUE(doc["tokens"].is_array()) << listed.out;
  bool has_carol = false;
  for (const auto& t : doc["tokens"]) has_carol = has_carol || t["user"] == "carol";
  EXPECT_TRUE(has_carol) << listed.out;
  EXPECT_EQ(listed.out.find(carol), std::string::npos);  // never the token itself
  // An admin may drain: past authorization, the scheduler answers for the worker itself.
  auto drain_admin = proc::Run({DYT_DYTCTL_BINARY, "workers", "drain", "nosuch"}, admin_env);
  EXPECT_EQ(drain_admin.code, 1);
  EXPECT_EQ(drain_admin.err, "dytctl: worker nosuch: not found\n");
}

}  // namespace
}  // namespace dyt::security_testing
