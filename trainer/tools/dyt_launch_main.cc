// dyt-launch: starts the local ranks of a data-parallel job and supervises them (like torchrun).
//
//   dyt-launch --nproc N [--nnodes M --node-rank R] [--rdzv DIR] [--rdzv-id ID]
//              [--timeout-s S] [--host H] [--grace-s G] -- PROGRAM ARGS...
//
// Rank r gets DYT_RANK = R * N + local rank, DYT_WORLD_SIZE = M * N, DYT_LOCAL_RANK,
// DYT_RDZV, DYT_RDZV_ID, DYT_DIST_TIMEOUT_S (with --timeout-s) and DYT_DIST_HOST (see
// trainer/dist/make_communicator.h and docs/distributed.md). On one machine --rdzv defaults to
// a fresh temporary directory (removed at the end) and --rdzv-id to a fresh id; with several
// machines --rdzv is required and is either
//   * HOST:PORT (or tcp://HOST:PORT): node rank 0's dyt-launch serves the rendezvous store
//     (TcpKvStoreServer) on PORT before it starts its ranks, until they have all exited; the
//     other machines' ranks connect to HOST:PORT (retrying, so the order of starting does not
//     matter). No shared file system is needed; --rdzv-id defaults to "dyt-launch", since
//     every attempt gets a fresh, empty server. On one machine PORT may be 0 (any free port);
//   * a directory on a shared file system, with --rdzv-id the same on each machine.
//
// Exit codes: 0 all ranks succeeded; 3 all ranks stopped resumable (preempted after a
// checkpoint); otherwise the first failing rank's exit code (128 + signal if it was killed),
// and 2 for invalid arguments. SIGTERM / SIGINT are forwarded to every rank; a second one
// kills them.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/command_line.h"
#include "trainer/dist/launcher.h"
#include "trainer/dist/tcp_kv_store.h"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitBadArgs = 2;

std::atomic<int> g_signal{0};

void OnSignal(int sig) { g_signal.store(sig); }

void InstallHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

void Error(const std::string& msg) { std::fprintf(stderr, "dyt-launch: %s\n", msg.c_str()); }
void Note(const std::string& msg) { Error(msg); }

// Where node rank 0's rendezvous server listens, given the HOST of --rdzv HOST:PORT: HOST
// itself when it is a loopback address (a store for one machine is not exposed to the
// network); else every interface, since HOST is this machine as the others reach it.
std::string ServerBindHost(const std::string& host) {
  if (host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1") return host;
  return host.find(':') != std::string::npos ? "::" : "0.0.0.0";
}

}  // namespace

int main(int argc, char** argv) {
  // Everything after the first "--" is the program and its arguments, untouched by CLI11.
  std::vector<std::string> command;
  int own_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      own_argc = i;
      command.assign(argv + i + 1, argv + argc);
      break;
    }
  }

  CLI::App app{"dyt-launch: run the local ranks of a distributed dyt job and supervise them"};
  dyt::dist::LaunchSpec spec;
  double grace_s = 10;
  app.add_option("--nproc", spec.nproc, "ranks to start on this machine")
      ->required()
      ->check(CLI::Range(1, 4096));
  app.add_option("--nnodes", spec.nnodes, "machines in the job")->check(CLI::Range(1, 65536));
  app.add_option("--node-rank", spec.node_rank, "this machine's index in [0, nnodes)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--rdzv", spec.rdzv_dir,
                 "rendezvous: HOST:PORT, served by node rank 0's dyt-launch, or a directory "
                 "shared by every rank (default on one machine: a fresh temporary directory)");
  app.add_option("--rdzv-id", spec.rdzv_id,
                 "rendezvous id, unique to this job attempt (default on one machine: a fresh "
                 "one; with HOST:PORT: dyt-launch)");
  app.add_option("--timeout-s", spec.dist_timeout_s,
                 "rendezvous and collective timeout in seconds (DYT_DIST_TIMEOUT_S)")
      ->check(dyt::NumberIn(0.001, 7 * 86400.0));
  app.add_option("--host", spec.host,
                 "interface or host the ranks listen on (DYT_DIST_HOST; default 127.0.0.1 on "
                 "one machine, this machine's host name with several)");
  app.add_option("--grace-s", grace_s,
                 "after a rank fails: seconds between SIGTERM to the others and SIGKILL")
      ->check(dyt::NumberIn(0.0, 3600.0));
  app.footer("Usage: dyt-launch --nproc N [options] -- PROGRAM ARGS...");
  if (auto exit = dyt::ParseCommandLine(app, own_argc, argv)) return *exit;
  if (command.empty()) {
    Error("no program given: dyt-launch --nproc N [options] -- PROGRAM ARGS...");
    return kExitBadArgs;
  }
  spec.command = command;
  spec.grace = std::chrono::milliseconds(static_cast<long long>(grace_s * 1000.0));
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  spec.omp_threads_if_unset =
      static_cast<int>(std::max(1u, cores / static_cast<unsigned>(spec.nproc)));

  // HOST:PORT: a TCP store that node rank 0 serves.
  const bool tcp_rdzv = !spec.rdzv_dir.empty() && dyt::dist::IsTcpRendezvous(spec.rdzv_dir);
  dyt::dist::HostPort rdzv_server;
  if (tcp_rdzv) {
    auto parsed = dyt::dist::ParseHostPort(spec.rdzv_dir);
    if (!parsed.ok()) {
      Error("--rdzv: " + parsed.status().message());
      return kExitBadArgs;
    }
    rdzv_server = *parsed;
    if (rdzv_server.port == 0 && spec.nnodes > 1) {
      Error("--rdzv " + spec.rdzv_dir +
            ": port 0 (any free port) works on one machine only; the other machines must know "
            "the port");
      return kExitBadArgs;
    }
    if (spec.rdzv_id.empty() && spec.nnodes > 1) spec.rdzv_id = "dyt-launch";
  }

  // One machine: a private rendezvous directory and id unless given. Several: --rdzv required
  // (and --rdzv-id with a directory), and the ranks listen on this machine's name unless told
  // otherwise.
  std::string temp_rdzv;
  if (spec.nnodes == 1) {
    if (spec.rdzv_dir.empty() && spec.nproc > 1) {
      std::string tmpl = (std::getenv("TMPDIR") != nullptr ? std::string(std::getenv("TMPDIR"))
                                                           : std::string("/tmp")) +
                         "/dyt-rdzv-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) {
        Error("cannot create a temporary rendezvous directory " + tmpl);
        return kExitFailure;
      }
      temp_rdzv = spec.rdzv_dir = tmpl;
    }
    if (spec.rdzv_id.empty() && spec.nproc > 1) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
      spec.rdzv_id = "launch-" + std::to_string(::getpid()) + "-" + std::to_string(ms);
    }
  } else {
    if (spec.rdzv_dir.empty() || spec.rdzv_id.empty()) {
      Error(
          "--rdzv (HOST:PORT of node rank 0, or a shared directory) is required with --nnodes "
          "> 1, and --rdzv-id with a directory (the same on every machine)");
      return kExitBadArgs;
    }
    if (spec.host.empty()) {
      char name[256] = {};
      if (::gethostname(name, sizeof(name) - 1) == 0) spec.host = name;
    }
  }
  if (dyt::Status st = dyt::dist::ValidateLaunchSpec(spec); !st.ok()) {
    Error(st.message());
    if (!temp_rdzv.empty()) ::rmdir(temp_rdzv.c_str());  // made above, still empty
    return kExitBadArgs;
  }

  InstallHandlers();
  // Node rank 0 serves a TCP rendezvous before its ranks start, until they have all exited.
  std::unique_ptr<dyt::dist::TcpKvStoreServer> rdzv_store;
  if (tcp_rdzv) {
    if (spec.node_rank == 0) {
      const std::string bind = ServerBindHost(rdzv_server.host);
      auto started = dyt::dist::TcpKvStoreServer::Start(bind, rdzv_server.port);
      if (!started.ok()) {
        Error("rendezvous server: " + started.status().ToString());
        return kExitFailure;
      }
      rdzv_store = std::move(*started);
      rdzv_server.port = rdzv_store->port();
      Note("rendezvous server listening on " +
           dyt::dist::HostPort{bind, rdzv_store->port()}.ToString() + "; ranks connect to " +
           rdzv_server.ToString());
    }
    spec.rdzv_dir = rdzv_server.ToString();  // without "tcp://", with the real port
  }
  int code = kExitFailure;
  {
    auto launcher = dyt::dist::Launcher::Start(spec);
    if (!launcher.ok()) {
      Error(launcher.status().ToString());
    } else {
      const dyt::dist::LaunchResult result = (*launcher)->Wait([] { return g_signal.exchange(0); });
      code = result.exit_code;
      if (code != 0) {
        Error(result.summary);
        for (const auto& c : result.children) {
          std::fprintf(stderr, "dyt-launch:   rank %d (local %d, pid %d) %s\n", c.rank,
                       c.local_rank, static_cast<int>(c.pid), c.Describe().c_str());
        }
      }
    }
  }
  if (rdzv_store != nullptr) rdzv_store->Stop();
  if (!temp_rdzv.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_rdzv, ec);
  }
  return code;
}
