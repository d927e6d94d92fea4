#include "services/worker/rank_group.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <future>

namespace dyt::worker {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxLine = 64 * 1024;
constexpr milliseconds kDrainAfterExit{2000};

// A pipe's read end split into lines.
struct LineReader {
  int fd = -1;
  int local = 0;
  bool events = false;
  std::string partial;
};

void ClosePipe(int fds[2]) {
  if (fds[0] >= 0) ::close(fds[0]);
  if (fds[1] >= 0) ::close(fds[1]);
}

}  // namespace

StatusOr<std::unique_ptr<RankGroup>> RankGroup::Start(RankGroupSpec spec,
                                                      RankGroupCallbacks callbacks) {
  if (spec.nproc < 1) return InvalidArgument("nproc: must be >= 1");
  if (!spec.rank_env.empty() && static_cast<int>(spec.rank_env.size()) != spec.nproc) {
    return InvalidArgument("rank_env: must be empty or have nproc entries");
  }
  std::unique_ptr<RankGroup> group(new RankGroup());
  group->spec_ = std::move(spec);
  group->callbacks_ = std::move(callbacks);
  RankGroup* g = group.get();
  std::promise<Status> started;
  std::future<Status> started_future = started.get_future();
  group->thread_ = std::thread([g, &started] {
    const RankGroupSpec& spec = g->spec_;
    std::vector<int> out_fds, event_fds;
    dist::LaunchSpec launch;
    launch.command = spec.command;
    launch.nproc = spec.nproc;
    launch.first_rank = spec.first_rank;
    launch.world_size = spec.world_size;
    launch.rdzv_dir = spec.rdzv;
    launch.rdzv_id = spec.rdzv_id;
    launch.grace = spec.grace;
    launch.extra_env = spec.env;
    launch.log = [](const std::string& line) { spdlog::info("launcher: {}", line); };
    std::vector<int> write_ends;
    auto close_all = [&] {
      for (int fd : out_fds) ::close(fd);
      for (int fd : event_fds) ::close(fd);
      for (int fd : write_ends) ::close(fd);
    };
    for (int local = 0; local < spec.nproc; ++local) {
      int out[2] = {-1, -1}, ev[2] = {-1, -1};
      if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(ev, O_CLOEXEC) != 0) {
        const int err = errno;
        ClosePipe(out);
        ClosePipe(ev);
        close_all();
        g->done_ = true;
        started.set_value(Internal(std::string("pipe: ") + std::strerror(err)));
        return;
      }
      ::fcntl(out[0], F_SETFL, O_NONBLOCK);
      ::fcntl(ev[0], F_SETFL, O_NONBLOCK);
      out_fds.push_back(out[0]);
      event_fds.push_back(ev[0]);
      write_ends.push_back(out[1]);
      write_ends.push_back(ev[1]);
      dist::LaunchSpec::ChildSetup child;
      if (!spec.rank_env.empty()) child.env = spec.rank_env[local];
      child.fds = {{out[1], 1}, {out[1], 2}, {ev[1], 3}};
      launch.per_child.push_back(std::move(child));
    }
    StatusOr<std::unique_ptr<dist::Launcher>> launcher = dist::Launcher::Start(launch);
    for (int fd : write_ends) ::close(fd);
    write_ends.clear();
    if (!launcher.ok()) {
      close_all();
      g->done_ = true;
      started.set_value(launcher.status());
      return;
    }
    {
      std::lock_guard<std::mutex> lock(g->mu_);
      for (const dist::ChildOutcome& c : (*launcher)->children()) g->pids_.push_back(c.pid);
    }
    started.set_value(Status::Ok());  // `started` is gone after this line
    g->Run(std::move(*launcher), std::move(out_fds), std::move(event_fds));
  });
  const Status st = started_future.get();
  if (!st.ok()) {
    group->thread_.join();
    return st;
  }
  return group;
}

void RankGroup::Run(std::unique_ptr<dist::Launcher> launcher, std::vector<int> out_fds,
                    std::vector<int> event_fds) {
  const RankGroupSpec& spec = spec_;
  for (const dist::ChildOutcome& c : launcher->children()) {
    if (callbacks_.started) callbacks_.started(c.rank, c.pid);
  }
  std::vector<LineReader> readers;
  for (int local = 0; local < spec.nproc; ++local) {
    readers.push_back(LineReader{out_fds[local], local, false, {}});
    readers.push_back(LineReader{event_fds[local], local, true, {}});
  }
  std::vector<std::deque<std::string>> tails(spec.nproc);
  auto deliver = [&](const LineReader& r, std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const int rank = spec.first_rank + r.local;
    if (r.events) {
      if (callbacks_.event) callbacks_.event(rank, line);
      return;
    }
    std::deque<std::string>& tail = tails[r.local];
    tail.push_back(line);
    while (tail.size() > spec.tail_lines) tail.pop_front();
    if (callbacks_.output) callbacks_.output(rank, line);
  };
  // Reads what is there without blocking; returns how many pipes are still open.
  auto drain = [&](int timeout_ms) {
    std::vector<pollfd> pfds;
    std::vector<LineReader*> who;
    for (LineReader& r : readers) {
      if (r.fd < 0) continue;
      pfds.push_back(pollfd{r.fd, POLLIN, 0});
      who.push_back(&r);
    }
    if (pfds.empty()) return 0;
    if (::poll(pfds.data(), pfds.size(), timeout_ms) <= 0) return static_cast<int>(pfds.size());
    char buf[16384];
    int open = 0;
    for (size_t i = 0; i < pfds.size(); ++i) {
      LineReader& r = *who[i];
      if (pfds[i].revents != 0) {
        while (true) {
          const ssize_t n = ::read(r.fd, buf, sizeof(buf));
          if (n > 0) {
            r.partial.append(buf, static_cast<size_t>(n));
            size_t start = 0;
            for (size_t nl; (nl = r.partial.find('\n', start)) != std::string::npos;) {
              deliver(r, r.partial.substr(start, nl - start));
              start = nl + 1;
            }
            r.partial.erase(0, start);
            if (r.partial.size() > kMaxLine) {
              deliver(r, std::move(r.partial));
              r.partial.clear();
            }
            continue;
          }
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          // EOF or an error: the writer is gone.
          if (!r.partial.empty()) deliver(r, std::move(r.partial));
          r.partial.clear();
          ::close(r.fd);
          r.fd = -1;
          break;
        }
      }
      if (r.fd >= 0) ++open;
    }
    return open;
  };

  bool term_sent = false, kill_sent = false;
  const dist::LaunchResult result = launcher->Wait([&]() -> int {
    drain(0);
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_cause_ == StopCause::kNone) return 0;
    if (!term_sent) {
      term_sent = true;
      return SIGTERM;
    }
    if (!kill_sent && Clock::now() >= kill_at_) {
      kill_sent = true;
      return SIGKILL;  // the launcher's second signal: SIGKILL to every group
    }
    return 0;
  });
  const Clock::time_point drain_until = Clock::now() + kDrainAfterExit;
  while (drain(50) > 0 && Clock::now() < drain_until) {
  }
  for (LineReader& r : readers) {
    if (r.fd >= 0) ::close(r.fd);
  }
  processes_ended_ = true;
  for (const dist::ChildOutcome& c : result.children) {
    const std::deque<std::string>& t = tails[c.local_rank];
    const int peer = result.first_failed_rank != c.rank ? result.first_failed_rank : -1;
    if (callbacks_.exited) {
      callbacks_.exited(c.rank, c, std::vector<std::string>(t.begin(), t.end()), peer,
                        stop_cause());
    }
  }
  launcher.reset();
  done_ = true;
}

RankGroup::~RankGroup() {
  if (thread_.joinable()) {
    if (!done_) RequestStop(StopCause::kShutdown, milliseconds(0));
    thread_.join();
  }
}

void RankGroup::RequestStop(StopCause cause, milliseconds grace) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_cause_ == StopCause::kNone) stop_cause_ = cause;
  kill_at_ = std::min(kill_at_, Clock::now() + std::max(grace, milliseconds(0)));
}

StopCause RankGroup::stop_cause() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_cause_;
}

bool RankGroup::WaitDone(milliseconds timeout) const {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!done_) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

std::vector<pid_t> RankGroup::pids() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pids_;
}

}  // namespace dyt::worker
