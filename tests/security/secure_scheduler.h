// SecurityTest: a real dyt-scheduler with TLS (certificates from scripts/dyt-certs.sh) and
// bearer tokens on a free loopback port, for the tests in tests/security. It keeps every token
// it made and, at the end of each test, checks that none of them is in the scheduler's log.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/grpc_credentials.h"
#include "common/sha256.h"
#include "dyt/v1/auth_service.grpc.pb.h"
#include "dyt/v1/job_service.grpc.pb.h"
#include "dyt/v1/worker_service.grpc.pb.h"
#include "tests/cli/cli_process.h"

namespace dyt::security_testing {

using cli::testing::FreePort;
using cli::testing::PortAccepts;
using cli::testing::ReadText;
namespace proc = ::dyt::cli::testing;
using cli::testing::SpawnWithOutput;
using ::dyt::testing::TempDir;
using std::chrono::seconds;

inline std::chrono::system_clock::time_point In(int s) {
  return std::chrono::system_clock::now() + seconds(s);
}

inline v1::JobSpec Spec(const std::string& name, const std::string& train_path) {
  v1::JobSpec spec;
  spec.set_name(name);
  spec.set_owner("someone-else");  // the server replaces it with the token's user
  spec.mutable_model()->set_preset("tiny");
  spec.mutable_data()->add_train_paths(train_path);
  spec.mutable_train()->set_steps(10);
  spec.mutable_train()->set_batch_size(2);
  spec.mutable_resources()->set_ranks(1);
  spec.mutable_resources()->set_kind("cpu");
  return spec;
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = dir_.Join("certs");
    auto made =
        proc::Run({"/bin/bash", std::string(DYT_SOURCE_DIR) + "/scripts/dyt-certs.sh", certs_});
    ASSERT_EQ(made.code, 0) << made.err;
    data_root_ = dir_.Join("data");
    std::filesystem::create_directories(data_root_ + "/shards");
    std::filesystem::create_directories(dir_.Join("outside"));
    std::filesystem::create_directory_symlink(dir_.Join("outside"), data_root_ + "/escape");
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    address_ = "127.0.0.1:" + std::to_string(port_);
    pid_ = SpawnWithOutput(
        {DYT_SCHEDULER_BINARY, "--listen", address_, "--data-dir", dir_.Join("db"), "--tls-cert",
         certs_ + "/server.crt", "--tls-key", certs_ + "/server.key", "--data-root", data_root_,
         "--max-queued-per-user", "3", "--heartbeat-timeout-s", "30", "--log-level", "debug"},
        {}, dir_.Join("scheduler.out"), dir_.Join("scheduler.err"));
    ASSERT_GT(pid_, 0);
    auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (!PortAccepts(port_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(PortAccepts(port_)) << ReadText(dir_.Join("scheduler.err"));
    ca_pem_ = ReadText(certs_ + "/ca.crt");
    admin_ = ReadText(dir_.Join("db/admin.token"));
    while (!admin_.empty() && admin_.back() == '\n') admin_.pop_back();
    ASSERT_FALSE(admin_.empty());
    tokens_.push_back(admin_);
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      auto deadline = std::chrono::steady_clock::now() + seconds(15);
      while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    // Whatever a test did, no token ever reaches the log.
    std::string log = Log();
    for (const auto& t : tokens_) {
      EXPECT_EQ(log.find(t), std::string::npos) << "a token is in the scheduler log";
    }
  }

  std::string Log() const {
    return ReadText(dir_.Join("scheduler.err")) + ReadText(dir_.Join("scheduler.out"));
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& token) const {
    return grpc::CreateChannel(address_, ClientCredentials(ca_pem_, token));
  }
  std::unique_ptr<v1::JobService::Stub> Jobs(const std::string& token) const {
    return v1::JobService::NewStub(Channel(token));
  }
  std::unique_ptr<v1::AuthService::Stub> Auth(const std::string& token) const {
    return v1::AuthService::NewStub(Channel(token));
  }

  // A new token made by the admin.
  std::string Token(const std::string& user, const std::string& role, int64_t expires_s = 0) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::CreateTokenRequest request;
    request.set_user(user);
    request.set_role(role);
    request.set_expires_in_s(expires_s);
    v1::CreateTokenResponse response;
    grpc::Status status = Auth(admin_)->CreateToken(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    tokens_.push_back(response.token());
    return response.token();
  }

  grpc::Status Submit(const std::string& token, const v1::JobSpec& spec, v1::Job* job = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    v1::SubmitJobResponse response;
    grpc::Status status = Jobs(token)->SubmitJob(&context, request, &response);
    if (job != nullptr) *job = response.job();
    return status;
  }

  grpc::Status Get(const std::string& token, const std::string& id, v1::Job* job = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::GetJobRequest request;
    request.set_id(id);
    v1::Job response;
    grpc::Status status = Jobs(token)->GetJob(&context, request, &response);
    if (job != nullptr) *job = response;
    return status;
  }

  grpc::Status Cancel(const std::string& token, const std::string& id) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::CancelJobRequest request;
    request.set_id(id);
    v1::Job response;
    return Jobs(token)->CancelJob(&context, request, &response);
  }

  grpc::Status WhoAmI(const std::string& token) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::TokenInfo info;
    return Auth(token)->WhoAmI(&context, v1::WhoAmIRequest(), &info);
  }

  // A worker's first message: register as `worker_id` with one CPU slot.
  static v1::WorkerMessage Registration(const std::string& worker_id) {
    v1::WorkerMessage reg;
    reg.mutable_register_()->set_worker_id(worker_id);
    reg.mutable_register_()->set_hostname("h");
    reg.mutable_register_()->set_slot_kind("cpu");
    reg.mutable_register_()->set_slots(1);
    reg.mutable_register_()->set_memory_bytes(int64_t{1} << 30);
    return reg;
  }

  // The id of a valid token (WhoAmI); "" if it is not valid.
  std::string TokenId(const std::string& token) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::TokenInfo info;
    return Auth(token)->WhoAmI(&context, v1::WhoAmIRequest(), &info).ok() ? info.id() : "";
  }

  // A token's id as the scheduler shows it (the first 16 hex digits of its SHA-256), also
  // after it was revoked.
  static std::string TokenIdOf(const std::string& token) { return Sha256Hex(token).substr(0, 16); }

  // The admin revokes the token with that id.
  grpc::Status Revoke(const std::string& id) {
    grpc::ClientContext context;
    context.set_deadline(In(30));
    v1::RevokeTokenRequest request;
    request.set_id(id);
    v1::TokenInfo revoked;
    return Auth(admin_)->RevokeToken(&context, request, &revoked);
  }

  std::string TrainPath() const { return data_root_ + "/shards/train-0.bin"; }

  TempDir dir_;
  std::string certs_;
  std::string data_root_;
  std::string ca_pem_;
  std::string admin_;
  std::string address_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::vector<std::string> tokens_;
};

}  // namespace dyt::security_testing
