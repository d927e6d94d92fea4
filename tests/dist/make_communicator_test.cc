#include "trainer/dist/make_communicator.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <optional>
#include <string>

namespace dyt::dist {
namespace {

const char* const kVars[] = {"DYT_RANK",    "DYT_WORLD_SIZE", "DYT_LOCAL_RANK",    "DYT_RDZV",
                             "DYT_RDZV_ID", "DYT_DIST_HOST",  "DYT_DIST_TIMEOUT_S"};

// Clears the DYT_* variables for each test and restores them afterwards.
class DistEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVars) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      ::unsetenv(name);
    }
  }
  void TearDown() override {
    for (const char* name : kVars) ::unsetenv(name);
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
  }
  static void Set(const char* name, const std::string& value) { ::setenv(name, value.c_str(), 1); }
  void SetValidWorldOfFour() {
    Set("DYT_RANK", "2");
    Set("DYT_WORLD_SIZE", "4");
    Set("DYT_LOCAL_RANK", "0");
    Set("DYT_RDZV", "/tmp/rdzv");
    Set("DYT_RDZV_ID", "job7.attempt1");
    Set("DYT_DIST_TIMEOUT_S", "2.5");
  }
  // Expects INVALID_ARGUMENT whose message names `var`.
  static void ExpectRejected(const char* var) {
    auto env = DistEnvFromEnvironment();
    ASSERT_FALSE(env.ok()) << var;
    EXPECT_EQ(env.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(env.status().message().find(var), std::string::npos) << env.status().ToString();
  }

  std::map<std::string, std::string> saved_;
};

TEST_F(DistEnvTest, NothingSetIsAWorldOfOne) {
  auto env = DistEnvFromEnvironment();
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->rank, 0);
  EXPECT_EQ(env->world_size, 1);
  EXPECT_EQ(env->local_rank, 0);
  auto comm = MakeHostCommunicator(*env);
  ASSERT_TRUE(comm.ok()) << comm.status().ToString();
  EXPECT_STREQ((*comm)->backend_name(), "local");
  EXPECT_EQ((*comm)->world_size(), 1);
}

TEST_F(DistEnvTest, ReadsEveryVariable) {
  SetValidWorldOfFour();
  Set("DYT_DIST_HOST", "lo");
  auto env = DistEnvFromEnvironment();
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->rank, 2);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_rank, 0);
  EXPECT_EQ(env->rdzv, "/tmp/rdzv");
  EXPECT_EQ(env->job, "job7.attempt1");
  EXPECT_EQ(env->timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(env->host, "lo");
}

TEST_F(DistEnvTest, LocalRankDefaultsToRank) {
  SetValidWorldOfFour();
  ::unsetenv("DYT_LOCAL_RANK");
  auto env = DistEnvFromEnvironment();
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->local_rank, 2);
}

TEST_F(DistEnvTest, RejectsBadValuesNamingTheVariable) {
  const std::map<std::string, std::vector<std::string>> bad = {
      {"DYT_WORLD_SIZE", {"0", "-1", "two", "4x", "", " 4", "99999999999"}},
      {"DYT_RANK", {"4", "-1", "1.5", ""}},
      {"DYT_LOCAL_RANK", {"4", "-1", "x"}},
      {"DYT_DIST_TIMEOUT_S", {"0", "-3", "abc", "", "inf", "nan", "1e9"}},
      {"DYT_RDZV_ID", {"has space", ".hidden", "a/b", ""}},
      {"DYT_DIST_HOST", {""}},
  };
  for (const auto& [var, values] : bad) {
    for (const std::string& value : values) {
      SetValidWorldOfFour();
      Set(var.c_str(), value);
      SCOPED_TRACE(var + "='" + value + "'");
      ExpectRejected(var.c_str());
    }
  }
}

TEST_F(DistEnvTest, AWorldOfSeveralNeedsRankAndRendezvous) {
  for (const char* missing : {"DYT_RANK", "DYT_RDZV", "DYT_RDZV_ID"}) {
    SetValidWorldOfFour();
    ::unsetenv(missing);
    SCOPED_TRACE(missing);
    ExpectRejected(missing);
  }
}

TEST_F(DistEnvTest, MakeHostCommunicatorValidatesTheStruct) {
  DistEnv env;
  env.world_size = 2;
  env.rank = 0;
  auto comm = MakeHostCommunicator(env);  // no rendezvous directory
  EXPECT_EQ(comm.status().code(), StatusCode::kInvalidArgument);
  env.rdzv = "/tmp/x";
  env.job = "bad key";
  EXPECT_EQ(MakeHostCommunicator(env).status().code(), StatusCode::kInvalidArgument);
  env.job = "ok";
  env.rank = 2;
  EXPECT_EQ(MakeHostCommunicator(env).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dyt::dist
