// Authorize's decisions for every role, and the Authenticator over a real StateStore: only
// hashes are stored, expiry and revocation, the first admin token written once with mode 0600.
#include "scheduler/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/sha256.h"
#include "tests/common/temp_dir.h"

namespace dyt {
namespace {

using ::dyt::testing::TempDir;

AccessTarget Job(const std::string& owner) {
  AccessTarget t;
  t.job_id = "job-000000000001";
  t.job_owner = owner;
  return t;
}

TEST(AuthorizeTest, RolesAndOwnership) {
  const Caller admin{"root", Role::kAdmin, true, "0123456789abcdef"};
  const Caller alice{"alice", Role::kUser, true, "0123456789abcdef"};
  const Caller viewer{"vic", Role::kViewer, true, "0123456789abcdef"};
  const Caller worker{"w1", Role::kWorker, true, "0123456789abcdef"};
  for (Action a : {Action::kSubmitJob, Action::kReadJob, Action::kCancelJob, Action::kListJobs,
                   Action::kManageTokens, Action::kManageWorkers, Action::kWorkerConnect,
                   Action::kRendezvous}) {
    EXPECT_TRUE(Authorize(admin, a, Job("bob")).ok());
  }
  EXPECT_TRUE(Authorize(alice, Action::kSubmitJob).ok());
  EXPECT_TRUE(Authorize(alice, Action::kReadJob, Job("alice")).ok());
  EXPECT_TRUE(Authorize(alice, Action::kCancelJob, Job("alice")).ok());
  Status other = Authorize(alice, Action::kReadJob, Job("bob"));
  EXPECT_EQ(other.code(), StatusCode::kNotFound);
  EXPECT_EQ(other.message(), "job job-000000000001: not found");
  EXPECT_EQ(Authorize(alice, Action::kCancelJob, Job("bob")).code(), StatusCode::kNotFound);
  EXPECT_EQ(Authorize(alice, Action::kManageTokens).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(alice, Action::kRendezvous).code(), StatusCode::kPermissionDenied);
  // Draining and removing workers is for admins alone.
  Status drain = Authorize(alice, Action::kManageWorkers);
  EXPECT_EQ(drain.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(drain.message(), "role user may not manage workers");
  EXPECT_EQ(Authorize(viewer, Action::kManageWorkers).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(worker, Action::kManageWorkers).code(), StatusCode::kPermissionDenied);

  EXPECT_TRUE(Authorize(viewer, Action::kReadJob, Job("bob")).ok());
  EXPECT_TRUE(Authorize(viewer, Action::kListJobs).ok());
  EXPECT_EQ(Authorize(viewer, Action::kCancelJob, Job("bob")).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(viewer, Action::kSubmitJob).code(), StatusCode::kPermissionDenied);

  EXPECT_EQ(Authorize(worker, Action::kSubmitJob).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(worker, Action::kReadJob, Job("w1")).code(), StatusCode::kPermissionDenied);
  AccessTarget reg;
  reg.worker_id = "w1";
  EXPECT_TRUE(Authorize(worker, Action::kWorkerConnect, reg).ok());
  reg.worker_id = "w2";
  EXPECT_EQ(Authorize(worker, Action::kWorkerConnect, reg).code(), StatusCode::kPermissionDenied);
  AccessTarget rdzv;
  rdzv.job_id = "job-000000000001";
  rdzv.attempt_workers = {"w2", "w3"};
  EXPECT_EQ(Authorize(worker, Action::kRendezvous, rdzv).code(), StatusCode::kPermissionDenied);
  rdzv.attempt_workers.push_back("w1");
  EXPECT_TRUE(Authorize(worker, Action::kRendezvous, rdzv).ok());

  EXPECT_EQ(*ListOwnerScope(alice, ""), "alice");
  EXPECT_EQ(*ListOwnerScope(alice, "alice"), "alice");
  EXPECT_EQ(ListOwnerScope(alice, "bob").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(*ListOwnerScope(viewer, "bob"), "bob");
  EXPECT_EQ(SubmitOwner(alice, "mallory"), "alice");
  EXPECT_EQ(SubmitOwner(Caller{}, "mallory"), "mallory");  // authentication off
}

TEST(AuthenticatorTest, StoresHashesAndRefusesExpiredAndRevokedTokens) {
  TempDir dir;
  auto store = StateStore::Open(dir.Join("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  Authenticator auth(store->get());
  auto created = auth.CreateToken("alice", "user", 3600, "test");
  ASSERT_TRUE(created.ok()) << created.status().message();
  const std::string token = created->token();
  EXPECT_EQ(token.rfind("dyt_", 0), 0u);
  EXPECT_EQ(token.size(), 68u);
  auto stored = (*store)->ListTokens();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].first, Sha256Hex(token));
  EXPECT_EQ((*stored)[0].second.SerializeAsString().find(token), std::string::npos);

  auto caller = auth.AuthenticateToken(token);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->user, "alice");
  EXPECT_EQ(caller->role, Role::kUser);
  EXPECT_EQ(caller->token_id, created->info().id());
  EXPECT_EQ(auth.AuthenticateToken(token + "x").status().code(), StatusCode::kUnauthenticated);

  ASSERT_TRUE(auth.RevokeToken(created->info().id()).ok());
  Status revoked = auth.AuthenticateToken(token).status();
  EXPECT_EQ(revoked.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(revoked.message().find(token), std::string::npos);

  // Expiry: a stored record whose time has passed.
  v1::TokenInfo old = (*stored)[0].second;
  old.set_revoked(false);
  old.mutable_expires()->set_seconds(1);
  ASSERT_TRUE((*store)->PutToken((*stored)[0].first, old).ok());
  EXPECT_NE(auth.AuthenticateToken(token).status().message().find("expired"), std::string::npos);

  EXPECT_EQ(auth.CreateToken("a b", "user", 0, "t").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(auth.CreateToken("bob", "root", 0, "t").status().code(), StatusCode::kInvalidArgument);
}

TEST(AuthenticatorTest, FirstAdminTokenIsWrittenOnceWithMode0600) {
  TempDir dir;
  auto store = StateStore::Open(dir.Join("db"));
  ASSERT_TRUE(store.ok());
  Authenticator auth(store->get());
  auto first = auth.BootstrapAdmin(dir.Join("admin.token"));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  struct stat st {};
  ASSERT_EQ(::stat(dir.Join("admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(dir.Join("admin.token"));
  std::string token;
  std::getline(in, token);
  auto caller = auth.AuthenticateToken(token);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->role, Role::kAdmin);
  auto second = auth.BootstrapAdmin(dir.Join("admin2.token"));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_FALSE(std::filesystem::exists(dir.Join("admin2.token")));

  Authenticator off;
  auto anyone = off.AuthenticateToken("");
  ASSERT_TRUE(anyone.ok());
  EXPECT_EQ(anyone->role, Role::kAdmin);
  EXPECT_FALSE(anyone->authenticated);
}

}  // namespace
}  // namespace dyt
