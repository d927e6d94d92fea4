#include "trainer/dist/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "trainer/dist/kv_store.h"

extern char** environ;

namespace dyt::dist {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kPollInterval{10};

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The path execve gets: `program` itself when it has a '/', else the first match in PATH.
// Resolved before forking, since the child may only make async-signal-safe calls.
StatusOr<std::string> ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    if (!IsExecutableFile(program)) {
      return NotFound("program '" + program + "' is not an executable file");
    }
    return program;
  }
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    // An empty entry means the current directory.
    const std::string dir = end > begin ? dirs.substr(begin, end - begin) : std::string(".");
    const std::string candidate = dir + "/" + program;
    if (IsExecutableFile(candidate)) return candidate;
    begin = end + 1;
  }
  return NotFound("program '" + program + "' not found in PATH");
}

std::string FormatSeconds(double s) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", s);
  return buf;
}

std::string NameOf(const std::string& entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

std::string ChildOutcome::Describe() const {
  if (exited) return "exited with code " + std::to_string(exit_code);
  const char* name = ::strsignal(term_signal);
  return "was killed by signal " + std::to_string(term_signal) +
         (name != nullptr ? std::string(" (") + name + ")" : std::string());
}

int FirstRank(const LaunchSpec& spec) {
  return spec.first_rank >= 0 ? spec.first_rank : spec.node_rank * spec.nproc;
}

int WorldSize(const LaunchSpec& spec) {
  return spec.world_size > 0 ? spec.world_size : spec.nnodes * spec.nproc;
}

Status ValidateLaunchSpec(const LaunchSpec& spec) {
  if (spec.command.empty() || spec.command[0].empty()) {
    return InvalidArgument("command: a program to run is needed");
  }
  if (spec.nproc < 1 || spec.nproc > 4096) {
    return InvalidArgument("nproc " + std::to_string(spec.nproc) + ": must be in [1, 4096]");
  }
  if (spec.nnodes < 1 || spec.nnodes > 65536 / spec.nproc) {
    return InvalidArgument("nnodes " + std::to_string(spec.nnodes) +
                           ": must be >= 1, with nnodes * nproc <= 65536");
  }
  if (spec.node_rank < 0 || spec.node_rank >= spec.nnodes) {
    return InvalidArgument("node_rank " + std::to_string(spec.node_rank) + ": must be in [0, " +
                           "nnodes " + std::to_string(spec.nnodes) + ")");
  }
  if (spec.world_size < 0 || spec.world_size > 65536) {
    return InvalidArgument("world_size " + std::to_string(spec.world_size) +
                           ": must be in [1, 65536] (or 0: nnodes * nproc)");
  }
  if (spec.first_rank >= 0 && FirstRank(spec) + spec.nproc > WorldSize(spec)) {
    return InvalidArgument("first_rank " + std::to_string(spec.first_rank) +
                           ": first_rank + nproc must be <= world_size " +
                           std::to_string(WorldSize(spec)));
  }
  if (!spec.per_child.empty() && static_cast<int>(spec.per_child.size()) != spec.nproc) {
    return InvalidArgument("per_child: must be empty or have nproc (" + std::to_string(spec.nproc) +
                           ") entries, has " + std::to_string(spec.per_child.size()));
  }
  for (const LaunchSpec::ChildSetup& c : spec.per_child) {
    if (c.fds.size() > 64) return InvalidArgument("per_child.fds: at most 64 per child");
    for (const auto& [from, to] : c.fds) {
      if (from < 0 || to < 0) return InvalidArgument("per_child.fds: descriptors must be >= 0");
    }
    for (const auto& kv : c.env) {
      if (kv.first.empty() || kv.first.find('=') != std::string::npos) {
        return InvalidArgument("per_child.env: bad variable name '" + kv.first + "'");
      }
    }
  }
  const int world = WorldSize(spec);
  if (world > 1) {
    if (spec.rdzv_dir.empty()) {
      return InvalidArgument("rdzv: a rendezvous directory is needed for a world of " +
                             std::to_string(world));
    }
    if (spec.rdzv_id.empty()) {
      return InvalidArgument("rdzv_id: a rendezvous id is needed for a world of " +
                             std::to_string(world));
    }
  }
  if (!spec.rdzv_id.empty()) {
    if (Status st = ValidateKvKey(spec.rdzv_id); !st.ok()) {
      return InvalidArgument("rdzv_id '" + spec.rdzv_id +
                             "': must be 1 to 200 characters from [A-Za-z0-9._-], not starting "
                             "with '.'");
    }
  }
  if (spec.dist_timeout_s < 0) {
    return InvalidArgument("timeout_s " + FormatSeconds(spec.dist_timeout_s) +
                           ": must be > 0 (or 0 for the trainer's default)");
  }
  if (spec.grace.count() < 0) return InvalidArgument("grace: must not be negative");
  if (spec.omp_threads_if_unset < 0) {
    return InvalidArgument("omp_threads_if_unset: must not be negative");
  }
  for (const auto& [name, value] : spec.extra_env) {
    if (name.empty() || name.find('=') != std::string::npos) {
      return InvalidArgument("extra_env: bad variable name '" + name + "'");
    }
  }
  return Status::Ok();
}

std::vector<std::string> ChildEnvironment(const LaunchSpec& spec, int local_rank,
                                          const std::vector<std::string>& base) {
  std::vector<std::pair<std::string, std::string>> set = {
      {"DYT_RANK", std::to_string(FirstRank(spec) + local_rank)},
      {"DYT_WORLD_SIZE", std::to_string(WorldSize(spec))},
      {"DYT_LOCAL_RANK", std::to_string(local_rank)},
      {"DYT_LOCAL_WORLD_SIZE", std::to_string(spec.nproc)},
      {"DYT_NODE_RANK", std::to_string(spec.node_rank)},
      {"DYT_RDZV", spec.rdzv_dir},
      {"DYT_RDZV_ID", spec.rdzv_id},
  };
  if (spec.dist_timeout_s > 0)
    set.push_back({"DYT_DIST_TIMEOUT_S", FormatSeconds(spec.dist_timeout_s)});
  if (!spec.host.empty()) set.push_back({"DYT_DIST_HOST", spec.host});
  std::set<std::string> base_names;
  for (const std::string& e : base) base_names.insert(NameOf(e));
  if (spec.omp_threads_if_unset > 0 && base_names.count("OMP_NUM_THREADS") == 0) {
    set.push_back({"OMP_NUM_THREADS", std::to_string(spec.omp_threads_if_unset)});
  }
  for (const auto& kv : spec.extra_env) set.push_back(kv);
  if (local_rank >= 0 && local_rank < static_cast<int>(spec.per_child.size())) {
    for (const auto& kv : spec.per_child[local_rank].env) set.push_back(kv);
  }

  std::set<std::string> overridden;
  for (const auto& kv : set) overridden.insert(kv.first);
  std::vector<std::string> env;
  for (const std::string& e : base) {
    if (overridden.count(NameOf(e)) == 0) env.push_back(e);
  }
  // Later entries of `set` win (extra_env over ours): keep the last value of each name. A
  // rendezvous left empty (one process) is unset, not set to "", which no trainer accepts.
  for (size_t i = 0; i < set.size(); ++i) {
    bool later = false;
    for (size_t j = i + 1; j < set.size(); ++j) later = later || set[j].first == set[i].first;
    const bool unset = set[i].second.empty() && set[i].first.rfind("DYT_RDZV", 0) == 0;
    if (!later && !unset) env.push_back(set[i].first + "=" + set[i].second);
  }
  return env;
}

StatusOr<std::unique_ptr<Launcher>> Launcher::Start(const LaunchSpec& spec) {
  DYT_RETURN_IF_ERROR(ValidateLaunchSpec(spec));
  DYT_ASSIGN_OR_RETURN(std::string program, ResolveProgram(spec.command[0]));
  std::vector<std::string> base;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) base.emplace_back(*e);

  std::unique_ptr<Launcher> launcher(new Launcher(spec));
  const pid_t parent = ::getpid();
  for (int local = 0; local < spec.nproc; ++local) {
    // Everything the child needs is built here: after fork it may only call
    // async-signal-safe functions.
    const std::vector<std::string> env_strings = ChildEnvironment(spec, local, base);
    std::vector<char*> envp, argv;
    for (const std::string& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
    envp.push_back(nullptr);
    for (const std::string& s : spec.command) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    static const char kExecFailed[] = "dyt-launch: exec failed\n";
    const std::vector<std::pair<int, int>> fds =
        spec.per_child.empty() ? std::vector<std::pair<int, int>>{} : spec.per_child[local].fds;

    const pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      launcher.reset();  // kills and reaps the children started so far
      return Internal("fork for local rank " + std::to_string(local) + ": " + std::strerror(err));
    }
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(126);  // the launcher died before prctl
      // First move every source above any target, so that no dup2 clobbers a later source.
      int moved[64];
      const size_t n_fds = fds.size() < 64 ? fds.size() : 64;
      for (size_t i = 0; i < n_fds; ++i) moved[i] = ::fcntl(fds[i].first, F_DUPFD_CLOEXEC, 1024);
      for (size_t i = 0; i < n_fds; ++i) {
        if (moved[i] < 0 || ::dup2(moved[i], fds[i].second) < 0) ::_exit(126);
      }
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execve(program.c_str(), argv.data(), envp.data());
      ssize_t ignored = ::write(2, kExecFailed, sizeof(kExecFailed) - 1);
      (void)ignored;
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so the group exists before we ever signal it
    ChildOutcome child;
    child.rank = FirstRank(spec) + local;
    child.local_rank = local;
    child.pid = pid;
    launcher->children_.push_back(child);
    launcher->running_.push_back(true);
  }
  return launcher;
}

Launcher::~Launcher() {
  SignalAll(SIGKILL);
  for (size_t i = 0; i < children_.size(); ++i) {
    if (!running_[i]) continue;
    int status = 0;
    while (::waitpid(children_[i].pid, &status, 0) < 0 && errno == EINTR) {
    }
    running_[i] = false;
  }
}

void Launcher::SignalAll(int sig) {
  for (size_t i = 0; i < children_.size(); ++i) {
    if (!running_[i]) continue;
    // The whole group; the child itself too in case it left the group.
    ::kill(-children_[i].pid, sig);
    ::kill(children_[i].pid, sig);
    if (sig == SIGTERM) {
      // A stopped rank (SIGSTOP, a debugger let go) acts on SIGTERM only once continued;
      // otherwise it would sit out the whole grace until SIGKILL.
      ::kill(-children_[i].pid, SIGCONT);
      ::kill(children_[i].pid, SIGCONT);
    }
    children_[i].signalled_by_launcher = true;
  }
}

int Launcher::Reap(std::vector<int>* just_ended) {
  int running = 0;
  for (size_t i = 0; i < children_.size(); ++i) {
    if (!running_[i]) continue;
    int status = 0;
    const pid_t r = ::waitpid(children_[i].pid, &status, WNOHANG);
    if (r == children_[i].pid) {
      running_[i] = false;
      ChildOutcome& c = children_[i];
      if (WIFEXITED(status)) {
        c.exited = true;
        c.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        c.term_signal = WTERMSIG(status);
      }
      just_ended->push_back(static_cast<int>(i));
    } else if (r < 0 && errno == ECHILD) {
      // Reaped elsewhere (a SIGCHLD handler of the embedding program): outcome unknown.
      running_[i] = false;
      children_[i].exited = true;
      children_[i].exit_code = 1;
      just_ended->push_back(static_cast<int>(i));
    } else {
      ++running;
    }
  }
  return running;
}

void Launcher::Log(const std::string& line) const {
  if (spec_.log) {
    spec_.log(line);
  } else {
    std::fprintf(stderr, "dyt-launch: %s\n", line.c_str());
  }
}

LaunchResult Launcher::Wait(const std::function<int()>& poll_signal) {
  LaunchResult result;
  int forwarded = 0;
  bool stopping = false;   // a child ended non-zero: the others are being stopped
  std::vector<int> order;  // children by the time they ended
  Clock::time_point term_at = Clock::time_point::max();  // pending SIGTERM (after an exit 3)
  Clock::time_point kill_at = Clock::time_point::max();  // pending SIGKILL
  const std::string grace_ms = std::to_string(spec_.grace.count());
  while (true) {
    std::vector<int> ended;
    const int running = Reap(&ended);
    for (int i : ended) {
      order.push_back(i);
      const ChildOutcome& c = children_[i];
      if (c.ok() || stopping || forwarded > 0) continue;
      stopping = true;
      if (running == 0) continue;
      const std::string who = "rank " + std::to_string(c.rank) + " (local " +
                              std::to_string(c.local_rank) + ", pid " + std::to_string(c.pid) +
                              ") " + c.Describe();
      if (c.exited && c.exit_code == kExitPreempted) {
        // Stopped resumably: the others normally reach the same decision by themselves.
        Log(who + " (preempted); giving the other " + std::to_string(running) + " rank(s) " +
            grace_ms + " ms to stop too before SIGTERM");
        term_at = Clock::now() + spec_.grace;
      } else {
        Log(who + "; stopping the other " + std::to_string(running) +
            " rank(s) (SIGTERM, SIGKILL after " + grace_ms + " ms)");
        SignalAll(SIGTERM);
        kill_at = Clock::now() + spec_.grace;
      }
    }
    if (running == 0) break;
    if (poll_signal) {
      if (const int sig = poll_signal(); sig != 0) {
        ++forwarded;
        result.stop_requested = true;
        if (forwarded == 1) {
          Log("got signal " + std::to_string(sig) + "; forwarding it to " +
              std::to_string(running) + " rank(s)");
          SignalAll(sig);
        } else {
          Log("got signal " + std::to_string(sig) + " again; killing " + std::to_string(running) +
              " rank(s)");
          SignalAll(SIGKILL);
        }
      }
    }
    const Clock::time_point now = Clock::now();
    if (now >= term_at) {
      Log(std::to_string(running) + " rank(s) still running " + grace_ms +
          " ms after a rank stopped; sending SIGTERM");
      SignalAll(SIGTERM);
      term_at = Clock::time_point::max();
      kill_at = now + spec_.grace;
    }
    if (now >= kill_at) {
      Log(std::to_string(running) +
          " rank(s) still running after the grace period; sending SIGKILL");
      SignalAll(SIGKILL);
      kill_at = Clock::time_point::max();
    }
    std::this_thread::sleep_for(kPollInterval);
  }

  result.children = children_;
  bool all_ok = true, all_ok_or_preempted = true;
  for (const ChildOutcome& c : children_) {
    all_ok = all_ok && c.ok();
    all_ok_or_preempted =
        all_ok_or_preempted && c.exited && (c.exit_code == 0 || c.exit_code == kExitPreempted);
  }
  const std::string n = std::to_string(children_.size());
  if (all_ok) {
    result.exit_code = 0;
    result.summary = "all " + n + " rank(s) exited 0";
    return result;
  }
  if (all_ok_or_preempted) {
    result.exit_code = kExitPreempted;
    result.summary = "the ranks stopped resumably (exit code " + std::to_string(kExitPreempted) +
                     ": preempted after a checkpoint)";
    return result;
  }
  // The first child, in time, that ended neither 0 nor 3 (there is one, or we returned above).
  const ChildOutcome* first = nullptr;
  for (int i : order) {
    const ChildOutcome& c = children_[i];
    if (!c.ok() && !(c.exited && c.exit_code == kExitPreempted)) {
      first = &c;
      break;
    }
  }
  result.first_failed_rank = first->rank;
  result.exit_code = first->exited ? first->exit_code : 128 + first->term_signal;
  result.summary = "rank " + std::to_string(first->rank) + " (local " +
                   std::to_string(first->local_rank) + ", pid " + std::to_string(first->pid) +
                   ") " + first->Describe();
  int others = 0;
  for (const ChildOutcome& c : children_) others += (&c != first && c.signalled_by_launcher);
  if (others > 0) result.summary += "; " + std::to_string(others) + " other rank(s) were stopped";
  if (result.stop_requested) result.summary += " (after a stop was requested)";
  return result;
}

}  // namespace dyt::dist
