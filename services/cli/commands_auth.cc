// dytctl token create/list/revoke and dytctl login.
#include <fcntl.h>
#include <google/protobuf/util/time_util.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <filesystem>
#include <iostream>

#include "common/token_rules.h"
#include "services/cli/client.h"
#include "services/cli/command_util.h"
#include "services/cli/commands.h"
#include "services/cli/format.h"

namespace dyt::cli {
namespace {

using google::protobuf::util::TimeUtil;

std::string TimeText(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "never";
  return TimeUtil::ToString(t).substr(0, 19) + "Z";
}

// Writes `text` to `path` (parents created 0700) with mode 0600, replacing it atomically.
Status WritePrivateFile(const std::string& path, const std::string& text) {
  std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) {
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) return InvalidArgument(p.parent_path().string() + ": " + ec.message());
  }
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("write config", tmp, errno);
  ::fchmod(fd, 0600);
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  bool ok = n == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return IoError("write config", tmp, err);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError("write config", path, errno);
  return Status::Ok();
}

}  // namespace

StatusOr<int64_t> ParseExpires(const std::string& text) {
  if (text == "never" || text == "0") return int64_t{0};
  const std::string rule =
      "must be a number with s, m, h or d (30d, 12h), or never (got '" + text + "')";
  if (text.size() < 2 || text.size() > 12) return InvalidArgument(rule);
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return InvalidArgument(rule);
  }
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return InvalidArgument(rule);
    n = n * 10 + (text[i] - '0');
  }
  if (n <= 0) return InvalidArgument("must be above 0 (or never; got '" + text + "')");
  if (n > kMaxTokenLifetimeS / unit) {
    return InvalidArgument("must be at most " + std::to_string(kMaxTokenLifetimeS / 86400) +
                           "d (10 years), or never (got '" + text + "')");
  }
  return n * unit;
}

int RunTokenCreate(const CommandContext& ctx, const TokenCreateArgs& args) {
  auto expires = ParseExpires(args.expires);  // checked on the command line already
  if (!expires.ok()) return Fail(ctx, "--expires: " + expires.status().message());
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  v1::CreateTokenRequest request;
  request.set_user(args.user);
  request.set_role(args.role);
  request.set_expires_in_s(*expires);
  auto created = client.CreateToken(request);
  if (!created.ok()) return Fail(ctx, created.status());
  if (ctx.json) {
    *ctx.out << ToJson(*created) << "\n";
  } else {
    *ctx.out << created->token() << "\n";
    *ctx.err << "token " << created->info().id() << " for " << created->info().user() << " ("
             << created->info().role() << "), expires " << TimeText(created->info().expires())
             << "; it is shown only this once\n";
  }
  return kExitOk;
}

int RunTokenList(const CommandContext& ctx) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto tokens = client.ListTokens();
  if (!tokens.ok()) return Fail(ctx, tokens.status());
  if (ctx.json) {  // one document, like list, workers and checkpoints
    v1::ListTokensResponse response;
    for (const auto& t : *tokens) *response.add_tokens() = t;
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  *ctx.out << "ID                USER             ROLE    EXPIRES               REVOKED\n";
  for (const auto& t : *tokens) {
    char line[256];
    std::snprintf(line, sizeof line, "%-17s %-16s %-7s %-21s %s\n", t.id().c_str(),
                  t.user().c_str(), t.role().c_str(), TimeText(t.expires()).c_str(),
                  t.revoked() ? "yes" : "no");
    *ctx.out << line;
  }
  return kExitOk;
}

int RunTokenRevoke(const CommandContext& ctx, const std::string& id) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto revoked = client.RevokeToken(id);
  if (!revoked.ok()) return Fail(ctx, revoked.status());
  *ctx.out << "revoked token " << revoked->id() << " of " << revoked->user() << "\n";
  return kExitOk;
}

int RunLogin(const CommandContext& ctx, const LoginArgs& args) {
  if (args.config_path.empty()) return Fail(ctx, "login: no config file path (set HOME)");
  std::string token = args.token;
  if (token == "-") {
    std::getline(std::cin, token);
  } else {
    // Other users see a command line (ps, /proc) and shells keep it in their history.
    *ctx.err << "dytctl: warning: a token given on the command line can be seen by other users "
                "of this machine and stays in the shell's history; `--token -` reads it from "
                "stdin\n";
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) return Fail(ctx, "login: --token: required");
  ClientConfig config = ctx.config;
  config.bearer_token = token;
  if (!args.ca_file.empty()) {
    config.tls_ca_file = std::filesystem::absolute(args.ca_file).string();
    config.ca_file_source = "--ca-file";
  }
  if (!args.server.empty()) config.server = args.server;
  if (config.tls_ca_file.empty()) {
    return Fail(ctx,
                "login: a token is only sent over TLS: give --ca-file (or ca_file: in the "
                "config file)");
  }
  DytClient client(config);
  auto me = client.WhoAmI();
  if (!me.ok()) return Fail(ctx, me.status());

  YAML::Node root;
  std::error_code ec;
  if (std::filesystem::exists(args.config_path, ec)) {
    try {
      root = YAML::LoadFile(args.config_path);
    } catch (const YAML::Exception& e) {
      return Fail(ctx, args.config_path + ": " + e.what());
    }
  }
  if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
  root["token"] = token;
  root["ca_file"] = std::filesystem::absolute(config.tls_ca_file).lexically_normal().string();
  if (!args.server.empty()) root["server"] = args.server;
  YAML::Emitter out;
  out << root;
  Status written = WritePrivateFile(args.config_path, std::string(out.c_str()) + "\n");
  if (!written.ok()) return Fail(ctx, written);
  *ctx.out << "logged in to " << config.server << " as " << me->user() << " (" << me->role()
           << "); saved to " << args.config_path << " (mode 0600)\n";
  return kExitOk;
}

}  // namespace dyt::cli
