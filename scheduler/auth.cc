#include "scheduler/auth.h"

#include <fcntl.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include "common/sha256.h"
#include "common/token_rules.h"

namespace dyt {
namespace {

using google::protobuf::util::TimeUtil;

constexpr std::string_view kBearer = "Bearer ";
constexpr size_t kMaxTokenLength = 512;

const char* ActionWords(Action action) {
  switch (action) {
    case Action::kSubmitJob:
      return "submit jobs";
    case Action::kReadJob:
      return "read jobs";
    case Action::kCancelJob:
      return "cancel jobs";
    case Action::kListJobs:
      return "list jobs";
    case Action::kListWorkers:
      return "list workers";
    case Action::kWorkerConnect:
      return "connect as a worker";
    case Action::kRendezvous:
      return "use rendezvous";
    case Action::kManageTokens:
      return "manage tokens";
    case Action::kManageWorkers:
      return "manage workers";
  }
  return "do that";
}

Status Denied(const Caller& caller, Action action) {
  return Status(StatusCode::kPermissionDenied,
                std::string("role ") + RoleName(caller.role) + " may not " + ActionWords(action));
}

// 32 random bytes from the kernel as "dyt_<64 hex digits>".
StatusOr<std::string> NewToken() {
  std::ifstream in("/dev/urandom", std::ios::binary);
  unsigned char bytes[32];
  if (!in.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    return Internal("token: cannot read /dev/urandom");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token = "dyt_";
  for (unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kUser:
      return "user";
    case Role::kViewer:
      return "viewer";
    case Role::kWorker:
      return "worker";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "admin") return Role::kAdmin;
  if (name == "user") return Role::kUser;
  if (name == "viewer") return Role::kViewer;
  if (name == "worker") return Role::kWorker;
  return std::nullopt;
}

Status Authorize(const Caller& caller, Action action, const AccessTarget& target) {
  if (caller.role == Role::kAdmin) return Status::Ok();
  const bool worker_action = action == Action::kWorkerConnect || action == Action::kRendezvous;
  if (caller.role == Role::kWorker) {
    if (!worker_action) return Denied(caller, action);
    if (action == Action::kWorkerConnect) {
      if (target.worker_id != caller.user) {
        return Status(StatusCode::kPermissionDenied, "register.worker_id: a worker token for '" +
                                                         caller.user + "' may only register as '" +
                                                         caller.user + "'");
      }
      return Status::Ok();
    }
    const auto& w = target.attempt_workers;
    if (std::find(w.begin(), w.end(), caller.user) == w.end()) {
      return Status(
          StatusCode::kPermissionDenied,
          "rendezvous: job " + target.job_id + " attempt is not assigned to worker " + caller.user);
    }
    return Status::Ok();
  }
  if (worker_action || action == Action::kManageTokens) return Denied(caller, action);
  switch (action) {
    case Action::kListJobs:
    case Action::kListWorkers:
      return Status::Ok();
    case Action::kReadJob:
      if (caller.role == Role::kViewer) return Status::Ok();
      break;
    case Action::kSubmitJob:
    case Action::kCancelJob:
      if (caller.role == Role::kViewer) return Denied(caller, action);
      if (action == Action::kSubmitJob) return Status::Ok();
      break;
    default:
      return Denied(caller, action);
  }
  // A user on one job: only its own. Another user's job looks like no job at all.
  if (target.job_owner != caller.user) return NotFound("job " + target.job_id + ": not found");
  return Status::Ok();
}

StatusOr<std::string> ListOwnerScope(const Caller& caller, const std::string& requested_owner) {
  if (!caller.authenticated || caller.role != Role::kUser) return requested_owner;
  if (!requested_owner.empty() && requested_owner != caller.user) {
    return Status(StatusCode::kPermissionDenied,
                  "owner: role user lists only its own jobs (owner " + caller.user + ", got " +
                      requested_owner + ")");
  }
  return caller.user;
}

std::string SubmitOwner(const Caller& caller, const std::string& spec_owner) {
  return caller.authenticated ? caller.user : spec_owner;
}

Status ValidateUserName(const std::string& user) {
  bool ok = !user.empty() && user.size() <= 128;
  for (char c : user) {
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-' || c == '@');
  }
  if (!ok) return InvalidArgument("user: required, at most 128 characters of [A-Za-z0-9._@-]");
  return Status::Ok();
}

std::string CallerText(const Caller& caller) {
  if (!caller.authenticated) return "an unauthenticated caller (--insecure)";
  return caller.user + " (" + RoleName(caller.role) + ", token " + caller.token_id + ")";
}

StatusOr<Caller> Authenticator::Authenticate(const grpc::ServerContextBase& context) const {
  if (!enabled()) return Caller{};
  StatusOr<Caller> caller = [&]() -> StatusOr<Caller> {
    const auto& metadata = context.client_metadata();
    auto it = metadata.find("authorization");
    if (it == metadata.end()) {
      return Status(StatusCode::kUnauthenticated, "missing bearer token (authorization metadata)");
    }
    std::string_view value(it->second.data(), it->second.size());
    if (value.substr(0, kBearer.size()) != kBearer) {
      return Status(StatusCode::kUnauthenticated, "authorization: must be 'Bearer <token>'");
    }
    return AuthenticateToken(value.substr(kBearer.size()));
  }();
  std::string note;
  if (!caller.ok() && refused_log_.Allow(&note)) {
    spdlog::warn("refused a call from {}: {}{}", context.peer(), caller.status().ToString(), note);
  }
  return caller;
}

Status Authenticator::Check(const Caller& caller, Action action, const AccessTarget& target) const {
  Status allowed = Authorize(caller, action, target);
  std::string note;
  if (!allowed.ok() && refused_log_.Allow(&note)) {
    spdlog::warn("refused {} to {}: {}{}", ActionWords(action), CallerText(caller),
                 allowed.ToString(), note);
  }
  return allowed;
}

StatusOr<Caller> Authenticator::AuthenticateToken(std::string_view token) const {
  if (!enabled()) return Caller{};
  if (token.empty() || token.size() > kMaxTokenLength) {
    return Status(StatusCode::kUnauthenticated, "invalid token");
  }
  auto info = store_->GetToken(Sha256Hex(token));
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kNotFound) {
      return Status(StatusCode::kUnauthenticated, "invalid token");
    }
    return Status(StatusCode::kUnavailable, "token lookup failed");  // no detail to the caller
  }
  if (info->revoked()) {
    return Status(StatusCode::kUnauthenticated, "token " + info->id() + " was revoked");
  }
  if (info->has_expires() && TimeUtil::GetCurrentTime() >= info->expires()) {
    return Status(StatusCode::kUnauthenticated, "token " + info->id() + " expired");
  }
  auto role = ParseRole(info->role());
  if (!role) return Status(StatusCode::kUnauthenticated, "token " + info->id() + ": bad role");
  return Caller{info->user(), *role, true, info->id()};
}

StatusOr<v1::CreateTokenResponse> Authenticator::CreateToken(const std::string& user,
                                                             const std::string& role,
                                                             int64_t expires_in_s,
                                                             const std::string& created_by) const {
  if (!enabled()) {
    return FailedPrecondition("tokens: authentication is off (dyt-scheduler --insecure)");
  }
  DYT_RETURN_IF_ERROR(ValidateUserName(user));
  if (!ParseRole(role)) return InvalidArgument("role: must be admin, user, viewer or worker");
  if (expires_in_s < 0 || expires_in_s > kMaxTokenLifetimeS) {
    return InvalidArgument("expires_in_s: must be in [0, " + std::to_string(kMaxTokenLifetimeS) +
                           "] (0: never)");
  }
  DYT_ASSIGN_OR_RETURN(std::string token, NewToken());
  std::string hash = Sha256Hex(token);
  v1::CreateTokenResponse response;
  v1::TokenInfo* info = response.mutable_info();
  info->set_id(hash.substr(0, 16));
  info->set_user(user);
  info->set_role(role);
  *info->mutable_created() = TimeUtil::GetCurrentTime();
  if (expires_in_s > 0) {
    *info->mutable_expires() = info->created() + TimeUtil::SecondsToDuration(expires_in_s);
  }
  info->set_created_by(created_by);
  DYT_RETURN_IF_ERROR(store_->PutToken(hash, *info));
  response.set_token(std::move(token));
  return response;
}

StatusOr<std::vector<v1::TokenInfo>> Authenticator::ListTokens() const {
  if (!enabled()) return std::vector<v1::TokenInfo>{};
  DYT_ASSIGN_OR_RETURN(auto tokens, store_->ListTokens());
  std::vector<v1::TokenInfo> infos;
  for (auto& [hash, info] : tokens) infos.push_back(std::move(info));
  std::sort(infos.begin(), infos.end(),
            [](const auto& a, const auto& b) { return a.created() < b.created(); });
  return infos;
}

StatusOr<v1::TokenInfo> Authenticator::RevokeToken(const std::string& id) const {
  if (!enabled()) return NotFound("token " + id + ": not found");
  if (id.size() != 16) return InvalidArgument("id: a token id has 16 hex digits");
  // One revocation at a time, so two cannot each see the other's admin token as the one left.
  std::lock_guard<std::mutex> lock(revoke_mu_);
  DYT_ASSIGN_OR_RETURN(auto tokens, store_->ListTokens());
  auto lasting_admin = [](const v1::TokenInfo& t) {
    return t.role() == "admin" && !t.revoked() && !t.has_expires();
  };
  for (auto& [hash, info] : tokens) {
    if (info.id() != id) continue;
    if (lasting_admin(info) && std::none_of(tokens.begin(), tokens.end(), [&](const auto& other) {
          return other.second.id() != id && lasting_admin(other.second);
        })) {
      // Nothing could create tokens again: the cluster would be locked out for good.
      return FailedPrecondition(
          "token " + id +
          ": the last admin token that never expires cannot be revoked; "
          "create another one first (dytctl token create --user U --role admin)");
    }
    info.set_revoked(true);
    DYT_RETURN_IF_ERROR(store_->PutToken(hash, info));
    return info;
  }
  return NotFound("token " + id + ": not found");
}

StatusOr<bool> Authenticator::BootstrapAdmin(const std::string& path) const {
  if (!enabled()) return false;
  DYT_ASSIGN_OR_RETURN(auto tokens, store_->ListTokens());
  if (!tokens.empty()) return false;
  DYT_ASSIGN_OR_RETURN(auto created, CreateToken("admin", "admin", 0, "dyt-scheduler first start"));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("write admin token", path, errno);
  ::fchmod(fd, 0600);
  std::string text = created.token() + "\n";
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return IoError("write admin token", path, err);
  return true;
}

}  // namespace dyt
