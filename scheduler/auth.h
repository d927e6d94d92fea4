// Authentication and authorization for dyt-scheduler (docs/security.md).
//
// Authenticator turns the "authorization: Bearer <token>" metadata of a call into a Caller
// (user and role) by looking up the SHA-256 of the token in the StateStore; tokens themselves
// are never stored, logged or put in an error message. Authorize() is the one place that decides
// what a Caller may do; every JobService, WorkerService and AuthService handler asks it.
//
// Roles:
//   admin   everything.
//   user    submit jobs (owned by the token's user, whatever spec.owner says); get, watch,
//           cancel, read logs, list and pull checkpoints of its own jobs; list jobs (its own
//           only) and workers.
//   viewer  read-only on every job and on workers; no submit, no cancel.
//   worker  WorkerService only: Connect as the worker id equal to its user, and rendezvous
//           only for job attempts placed on that worker.
// Another user's job answers NOT_FOUND with the same message as a job that does not exist, so
// a user cannot learn which job ids exist; a role that may never do an action answers
// PERMISSION_DENIED. No token, an unknown, expired or revoked token: UNAUTHENTICATED.
//
// A disabled Authenticator (dyt-scheduler --insecure) treats every call as an anonymous admin.
#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "dyt/v1/auth_service.pb.h"
#include "scheduler/log_limiter.h"
#include "scheduler/state_store.h"

namespace dyt {

enum class Role { kAdmin, kUser, kViewer, kWorker };

// "admin", "user", "viewer", "worker".
const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

struct Caller {
  std::string user;  // empty when authentication is off
  Role role = Role::kAdmin;
  bool authenticated = false;  // false: authentication is off (--insecure)
  std::string token_id;        // the token's id (16 hex digits) when authenticated
};

enum class Action {
  kSubmitJob,
  kReadJob,  // get, watch, logs, list checkpoints, download checkpoint
  kCancelJob,
  kListJobs,
  kListWorkers,
  kWorkerConnect,  // WorkerService.Connect
  kRendezvous,     // WorkerService.Get/SetRendezvous
  kManageTokens,   // AuthService.CreateToken/ListTokens/RevokeToken
  kManageWorkers,  // JobService.DrainWorker/RemoveWorker
};

// What an action is on; only the fields the action needs are read.
struct AccessTarget {
  std::string job_id;                        // kReadJob, kCancelJob, kRendezvous
  std::string job_owner;                     // kReadJob, kCancelJob
  std::string worker_id;                     // kWorkerConnect: the id it registers as
  std::vector<std::string> attempt_workers;  // kRendezvous: workers the attempt runs on
};

// OK, PERMISSION_DENIED "role viewer may not cancel jobs", or NOT_FOUND "job <id>: not found"
// for another user's job.
Status Authorize(const Caller& caller, Action action, const AccessTarget& target = {});

// The owner ListJobs must be restricted to for this caller ("" : any owner): a user's own
// name (PERMISSION_DENIED when it asks for another owner's), else the requested one.
StatusOr<std::string> ListOwnerScope(const Caller& caller, const std::string& requested_owner);

// The owner a job submitted by `caller` gets: the token's user when authenticated.
std::string SubmitOwner(const Caller& caller, const std::string& spec_owner);

// Who made a call, for the scheduler's log: "alice (user, token 0123456789abcdef)", or
// "an unauthenticated caller (--insecure)". Never the token itself.
std::string CallerText(const Caller& caller);

// User names of tokens: 1-128 characters of [A-Za-z0-9._@-] (valid as spec.owner and as a
// worker id).
Status ValidateUserName(const std::string& user);

class Authenticator {
 public:
  // Authentication off: every call is an anonymous admin.
  Authenticator() = default;
  // Authentication on, tokens in `store` (which must outlive this).
  explicit Authenticator(StateStore* store) : store_(store) {}

  bool enabled() const { return store_ != nullptr; }

  // The caller of a call; UNAUTHENTICATED when enabled and the token is missing, malformed,
  // unknown, expired or revoked.
  // Refusals are logged (rate-limited) with the peer's address: an audit trail of who knocked.
  StatusOr<Caller> Authenticate(const grpc::ServerContextBase& context) const;
  // Authorize, with each refusal logged (rate-limited): who asked for what, and the answer
  // (also the NOT_FOUND of another user's job, which the caller cannot tell from a missing one).
  Status Check(const Caller& caller, Action action, const AccessTarget& target = {}) const;
  // The same for a raw token (tests, tools).
  StatusOr<Caller> AuthenticateToken(std::string_view token) const;

  // A new random token for `user` with `role`; expires_in_s 0: never.
  StatusOr<v1::CreateTokenResponse> CreateToken(const std::string& user, const std::string& role,
                                                int64_t expires_in_s,
                                                const std::string& created_by) const;
  StatusOr<std::vector<v1::TokenInfo>> ListTokens() const;
  // Marks the token with that id revoked; NOT_FOUND for an unknown id. FAILED_PRECONDITION for
  // the last unrevoked admin token without an expiry: at least one always remains, so an admin
  // can always create tokens again (open streams of a revoked token end within a second).
  StatusOr<v1::TokenInfo> RevokeToken(const std::string& id) const;

  // When the store has no token yet, creates an admin token (user "admin") and writes it to
  // `path` with mode 0600; returns whether it did. The token is never logged.
  StatusOr<bool> BootstrapAdmin(const std::string& path) const;

 private:
  StateStore* store_ = nullptr;
  mutable std::mutex revoke_mu_;
  mutable LogLimiter refused_log_;
};

}  // namespace dyt
