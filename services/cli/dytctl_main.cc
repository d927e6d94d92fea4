// dytctl: the command-line client of the dyt job service (docs/cli.md).
//
//   dytctl [--server HOST:PORT] [--output table|json] COMMAND ...
//
// Commands: submit, list, get, watch, logs, cancel, checkpoints, pull, workers (drain,
// undrain, remove), token (create, list, revoke), login.
#include <grpc/support/log.h>
#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/job_spec_limits.h"
#include "services/cli/client_config.h"
#include "services/cli/commands.h"
#include "services/cli/usage.h"

namespace {

// $USER, $LOGNAME, or the login name of this uid.
std::string DefaultOwner() {
  for (const char* name : {"USER", "LOGNAME"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return v;
  }
  const passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr && pw->pw_name != nullptr ? pw->pw_name : "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace dyt::cli;
  // dytctl says what failed in its own words (a refused TLS handshake included); gRPC's own
  // log lines ("E1129 ... Handshake failed") would only repeat it. GRPC_VERBOSITY brings them back.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
  CLI::App app{"dytctl: submit and follow dyt training jobs"};
  app.require_subcommand(1);
  app.fallthrough();
  app.failure_message(UsageFailureMessage);
  std::string server;
  std::string output = "table";
  app.add_option("--server", server,
                 "scheduler HOST:PORT (default: $DYT_SERVER, the config file, 127.0.0.1:50051)")
      ->check(CLI::Validator(ServerAddressRule, "HOST:PORT"));
  app.add_option("--output", output, "table (for people) or json (for scripts)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();

  SubmitArgs submit;
  submit.owner = DefaultOwner();
  auto* c_submit = app.add_subcommand("submit", "submit a job spec (YAML) and print the job id");
  c_submit->add_option("file", submit.file, "job spec YAML (see examples/)")
      ->required()
      ->check(NonEmpty());
  c_submit->add_option("--name", submit.name, "job name (overrides name:)");
  c_submit->add_option("--steps", submit.steps, "training steps (overrides train.steps)")
      ->check(IntegerIn(1, INT64_MAX));
  c_submit->add_option("--priority", submit.priority, "0..1000 (overrides priority)")
      ->check(IntegerIn(dyt::JobSpecLimits::kMinPriority, dyt::JobSpecLimits::kMaxPriority));
  c_submit->add_option("--ranks", submit.ranks, "data-parallel ranks (overrides resources.ranks)")
      ->check(IntegerIn(1, dyt::JobSpecLimits::kMaxRanks));
  c_submit->add_flag("--dry-run", submit.dry_run,
                     "let the scheduler check the spec and say where it would run; queue "
                     "nothing");
  c_submit->add_flag("-w,--watch", submit.watch,
                     "then follow the job until it ends, as `dytctl watch` (its exit code)");
  c_submit->add_option("--set", submit.sets, "KEY=VALUE override, e.g. model.norm=rmsnorm")
      ->allow_extra_args(false);

  ListArgs list;
  auto* c_list = app.add_subcommand("list", "list jobs");
  c_list->add_option("--state", list.state, "only jobs in this state (queued, running, ...)");
  c_list->add_option("--owner", list.owner, "only jobs of this owner");
  c_list->add_option("--name", list.name, "only jobs with this name");

  std::string id;
  auto* c_get = app.add_subcommand("get", "a job's full status");
  c_get->add_option("id", id, "job id")->required()->check(NonEmpty());

  auto* c_watch = app.add_subcommand(
      "watch", "follow a job until it ends (exit 0 if it SUCCEEDED, 3 otherwise)");
  c_watch->add_option("id", id, "job id")->required()->check(NonEmpty());

  LogsArgs logs;
  auto* c_logs = app.add_subcommand("logs", "a job's trainer output");
  c_logs->add_option("id", logs.id, "job id")->required()->check(NonEmpty());
  c_logs->add_flag("-f,--follow", logs.follow, "keep printing new lines until the job ends");
  c_logs->add_flag("--raw", logs.raw,
                   "print the trainers' control characters as they are (on a terminal they "
                   "are shown escaped, e.g. \\x1b)");
  c_logs->add_option("--tail", logs.tail, "lines of history first (1..10000)")
      ->check(IntegerIn(1, 10000))
      ->capture_default_str();

  std::string reason;
  auto* c_cancel = app.add_subcommand("cancel", "cancel a job that has not finished");
  c_cancel->add_option("id", id, "job id")->required()->check(NonEmpty());
  c_cancel->add_option("--reason", reason, "recorded in the job's events")->check(Utf8Text());

  auto* c_ckpts = app.add_subcommand("checkpoints", "a job's committed checkpoints");
  c_ckpts->add_option("id", id, "job id")->required()->check(NonEmpty());

  PullArgs pull;
  auto* c_pull = app.add_subcommand("pull", "download a checkpoint (verified, resumable)");
  c_pull->add_option("id", pull.id, "job id")->required()->check(NonEmpty());
  c_pull->add_option("--step", pull.step, "checkpoint step (default: the latest)")
      ->check(StepNumber());
  c_pull->add_option("-o,--dir", pull.dir, "directory to write the files into")
      ->required()
      ->check(NonEmpty());
  c_pull->add_option("--chunk-bytes", pull.chunk_bytes, "bytes per message (4096..4194304)")
      ->check(IntegerIn(4096, 4 << 20));

  auto* c_workers = app.add_subcommand(
      "workers", "the registered workers and their slots; drain, undrain, remove (admins)");
  WorkerDrainArgs drain;
  auto* c_drain = c_workers->add_subcommand(
      "drain", "no new work for a worker (its jobs run to their end unless --preempt)");
  c_drain->add_option("id", drain.id, "worker id")->required()->check(NonEmpty());
  c_drain->add_option("--reason", drain.reason, "why (shown by dytctl workers)")->check(Utf8Text());
  c_drain->add_flag("--preempt", drain.preempt,
                    "also stop its jobs with a checkpoint and requeue them elsewhere");
  std::string worker_id;
  auto* c_undrain = c_workers->add_subcommand("undrain", "let a drained worker take work again");
  c_undrain->add_option("id", worker_id, "worker id")->required()->check(NonEmpty());
  auto* c_remove = c_workers->add_subcommand(
      "remove", "forget a worker that is disconnected and runs nothing (a retired machine)");
  c_remove->add_option("id", worker_id, "worker id")->required()->check(NonEmpty());

  auto* c_token = app.add_subcommand("token", "bearer tokens (admin only; docs/security.md)");
  c_token->require_subcommand(1);
  TokenCreateArgs token_create;
  auto* c_token_create =
      c_token->add_subcommand("create", "create a token and print it (shown only once)");
  c_token_create->add_option("--user", token_create.user, "the user (job owner or worker id)")
      ->required()
      ->check(NonEmpty());
  c_token_create->add_option("--role", token_create.role, "admin, user, viewer or worker")
      ->check(CLI::IsMember({"admin", "user", "viewer", "worker"}))
      ->capture_default_str();
  c_token_create->add_option("--expires", token_create.expires, "30d, 12h, 45m, 90s or never")
      ->check(Lifetime())
      ->capture_default_str();
  auto* c_token_list = c_token->add_subcommand("list", "every token (never the tokens)");
  std::string token_id;
  auto* c_token_revoke = c_token->add_subcommand("revoke", "revoke a token by its id");
  c_token_revoke->add_option("id", token_id, "token id (from token list)")
      ->required()
      ->check(NonEmpty());

  LoginArgs login;
  auto* c_login = app.add_subcommand(
      "login", "check a token and save it (and the CA file) in the config file, mode 0600");
  c_login->add_option("--token", login.token, "the token ('-': read it from stdin)")
      ->required()
      ->check(NonEmpty());
  c_login->add_option("--ca-file", login.ca_file, "CA certificate (PEM) of the scheduler");

  if (auto error = CommandWordError(app, argc, argv)) {
    std::cerr << "dytctl: " << *error << "\n";
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  // Checked here, not with CLI11's excludes(), which crowds both lines of --help.
  if (c_submit->parsed() && submit.dry_run && submit.watch) {
    std::cerr << "dytctl: --watch: a --dry-run queues no job to watch (dytctl submit --help)\n";
    return kExitUsage;
  }
  CommandContext ctx;
  ctx.json = output == "json";
  ctx.tty = ::isatty(STDOUT_FILENO) == 1;
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  auto config = ResolveClientConfig(SourcesFromEnvironment(server));
  if (!config.ok()) {
    std::cerr << "dytctl: " << config.status().message() << "\n";
    return kExitError;
  }
  ctx.config = *config;
  for (const std::string& warning : ctx.config.warnings) {
    std::cerr << "dytctl: warning: " << warning << "\n";
  }

  if (c_submit->parsed()) return RunSubmit(ctx, submit);
  if (c_list->parsed()) return RunList(ctx, list);
  if (c_get->parsed()) return RunGet(ctx, id);
  if (c_watch->parsed()) return RunWatch(ctx, id);
  if (c_logs->parsed()) return RunLogs(ctx, logs);
  if (c_cancel->parsed()) return RunCancel(ctx, id, reason);
  if (c_ckpts->parsed()) return RunCheckpoints(ctx, id);
  if (c_pull->parsed()) {
    ctx.tty = ::isatty(STDERR_FILENO) == 1;  // pull draws its progress on stderr
    return RunPull(ctx, pull);
  }
  if (c_drain->parsed()) return RunWorkerDrain(ctx, drain);
  if (c_undrain->parsed()) return RunWorkerDrain(ctx, WorkerDrainArgs{worker_id, false, "", false});
  if (c_remove->parsed()) return RunWorkerRemove(ctx, worker_id);
  if (c_workers->parsed()) return RunWorkers(ctx);
  if (c_token_create->parsed()) return RunTokenCreate(ctx, token_create);
  if (c_token_list->parsed()) return RunTokenList(ctx);
  if (c_token_revoke->parsed()) return RunTokenRevoke(ctx, token_id);
  if (c_login->parsed()) {
    login.server = server;
    login.config_path = ConfigFilePath(SourcesFromEnvironment(server));
    return RunLogin(ctx, login);
  }
  return kExitUsage;
}
