// The dytctl commands: each takes its parsed arguments, talks to the scheduler through
// DytClient, prints to ctx.out (results) and ctx.err (errors, progress), and returns the exit
// code. dytctl_main.cc only parses the command line and calls these.
//
// Output: a table or text for people (`--output table`, the default), or JSON for scripts
// (`--output json`: protobuf's JSON mapping with proto field names; `watch` and `logs` print
// one JSON object per line). Errors go to stderr as "dytctl: <what happened>" in both modes.
//
// Exit codes: 0 success; 1 an error (unreachable server, invalid spec, unknown job, ...);
// 2 bad command-line usage; 3 `watch` saw the job end in a state other than SUCCEEDED.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"
#include "services/cli/client_config.h"

namespace dyt::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitJobNotSucceeded = 3;

struct CommandContext {
  ClientConfig config;
  bool json = false;  // --output json
  bool tty = false;   // ctx.out is a terminal: redraw progress in place
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
};

struct SubmitArgs {
  std::string file;
  std::optional<std::string> name;
  std::optional<int64_t> steps;
  std::optional<int> priority;
  std::optional<int> ranks;
  std::vector<std::string> sets;  // "key=value", applied in order, before the flags above
  std::string owner;              // default owner ($USER)
  bool dry_run = false;  // the server checks the spec and previews placement; nothing is queued
  bool watch = false;    // then follow the job as `watch` does (its exit code)
};

struct ListArgs {
  std::string state;  // a JobState name (any case); empty: any
  std::string owner;
  std::string name;
};

struct LogsArgs {
  std::string id;
  bool follow = false;
  int tail = 100;
  bool raw = false;  // print control characters as they are, also on a terminal
};

struct PullArgs {
  std::string id;
  int64_t step = 0;  // 0: the latest
  std::string dir;
  int chunk_bytes = 0;  // 0: the server's default
};

int RunSubmit(const CommandContext& ctx, const SubmitArgs& args);
int RunList(const CommandContext& ctx, const ListArgs& args);
int RunGet(const CommandContext& ctx, const std::string& id);
int RunCancel(const CommandContext& ctx, const std::string& id, const std::string& reason);
int RunWatch(const CommandContext& ctx, const std::string& id);
int RunLogs(const CommandContext& ctx, const LogsArgs& args);
int RunCheckpoints(const CommandContext& ctx, const std::string& id);
int RunPull(const CommandContext& ctx, const PullArgs& args);
int RunWorkers(const CommandContext& ctx);

// Operators (admin tokens): `workers drain|undrain|remove` (docs/cli.md).
struct WorkerDrainArgs {
  std::string id;
  bool drain = true;  // false: undrain
  std::string reason;
  bool preempt = false;  // stop its jobs with a checkpoint and requeue them elsewhere
};
int RunWorkerDrain(const CommandContext& ctx, const WorkerDrainArgs& args);
int RunWorkerRemove(const CommandContext& ctx, const std::string& id);

// Tokens and login (docs/security.md).
struct TokenCreateArgs {
  std::string user;
  std::string role = "user";
  std::string expires = "30d";  // "30d", "12h", "45m", "90s", "never"
};
struct LoginArgs {
  std::string token;        // the token ("-": read it from stdin)
  std::string ca_file;      // also save ca_file: when given
  std::string server;       // also save server: when given (--server)
  std::string config_path;  // where to write (ConfigFilePath)
};
int RunTokenCreate(const CommandContext& ctx, const TokenCreateArgs& args);
int RunTokenList(const CommandContext& ctx);
int RunTokenRevoke(const CommandContext& ctx, const std::string& id);
// Checks the token with WhoAmI, then writes token (and ca_file, server) into the config file
// with mode 0600, keeping its other keys.
int RunLogin(const CommandContext& ctx, const LoginArgs& args);

// "30d" -> 2592000; "never" or "0" -> 0; INVALID_ARGUMENT with the rule otherwise ("must be a
// number with s, m, h or d ...", "must be at most 3650d ..."), for the caller to prefix.
StatusOr<int64_t> ParseExpires(const std::string& text);

// A fresh client request id: "dytctl-" and 32 random hex digits.
std::string NewClientRequestId();

}  // namespace dyt::cli
