#include "services/worker/supervisor.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "services/worker/event_parser.h"
#include "services/worker/job_config.h"
#include "services/worker/rank_group.h"
#include "services/worker/rank_logs.h"
#include "services/worker/work_dir_retention.h"

namespace dyt::worker {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// One job attempt on this worker. Fields other than `group` are touched only by the group's
// thread (its callbacks) once the group runs.
struct Supervisor::Run {
  std::string job_id;
  int attempt = 0;
  std::vector<int> ranks;
  std::vector<int> slots;  // every slot the attempt holds here
  ProgressTracker progress;
  std::string last_error;  // the trainer's "error" event
  // The watchdog (JobSpec.stall_timeout_s): when the trainers last printed or reported
  // anything (written by the group's thread, read by Reap), and whether it stopped them.
  int stall_timeout_s = 0;
  std::atomic<int64_t> last_activity_ns{0};
  bool stalled = false;              // Reap's (under mu_)
  std::unique_ptr<RankLogs> logs;    // written by the group's thread
  std::unique_ptr<RankGroup> group;  // last: destroyed (joined) first
};

namespace {

v1::WorkerMessage Update(const std::string& job_id, int attempt, int rank,
                         v1::RankUpdate::Kind kind) {
  v1::WorkerMessage m;
  v1::RankUpdate* u = m.mutable_update();
  u->set_job_id(job_id);
  u->set_attempt(attempt);
  u->set_rank(rank);
  u->set_kind(kind);
  return m;
}

std::string Join(const std::vector<int>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += sep;
    out += std::to_string(v[i]);
  }
  return out;
}

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// A path component from an id: keep [A-Za-z0-9._-], replace the rest.
std::string SafeName(const std::string& id) {
  std::string out = id.empty() ? std::string("job") : id;
  for (char& c : out) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      c = '_';
    }
  }
  if (out[0] == '.') out[0] = '_';
  return out;
}

}  // namespace

Supervisor::Supervisor(SupervisorOptions options, Outbox* outbox, WorkerMetrics* metrics)
    : options_(std::move(options)), outbox_(outbox), metrics_(metrics) {}

Supervisor::~Supervisor() {
  std::map<std::pair<std::string, int>, std::unique_ptr<Run>> runs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    runs.swap(runs_);
  }
  runs.clear();  // RankGroup's destructor kills and joins
}

void Supervisor::ReportFailure(const v1::Assignment& a, const std::string& reason) {
  spdlog::warn("job {} attempt {}: {}", a.job_id(), a.attempt(), reason);
  for (const v1::RankPlacement& p : a.ranks()) {
    v1::WorkerMessage m = Update(a.job_id(), a.attempt(), p.rank(), v1::RankUpdate::EXITED);
    m.mutable_update()->set_exit(v1::RankUpdate::FAILED);
    m.mutable_update()->set_reason(reason);
    outbox_->Push(std::move(m));
  }
}

std::string Supervisor::CheckAssignmentLocked(const v1::Assignment& a,
                                              std::vector<int>* slots) const {
  if (a.job_id().empty()) return "assignment: job_id is empty";
  if (a.ranks_size() == 0) return "assignment: no ranks";
  if (a.world_size() < 1) return "assignment: world_size must be >= 1";
  const std::string kind = a.spec().resources().kind();
  if (!kind.empty() && kind != options_.slot_kind) {
    return "assignment: asks " + kind + " slots; this worker has " + options_.slot_kind;
  }
  std::set<int> busy;
  for (const auto& [key, run] : runs_) {
    if (run->group != nullptr && run->group->processes_ended()) continue;  // slots already free
    busy.insert(run->slots.begin(), run->slots.end());
  }
  std::set<int> mine;
  for (int i = 0; i < a.ranks_size(); ++i) {
    const v1::RankPlacement& p = a.ranks(i);
    if (p.rank() != a.ranks(0).rank() + i) {
      return "assignment: ranks must be contiguous and increasing (rank " +
             std::to_string(p.rank()) + " at position " + std::to_string(i) + ")";
    }
    if (p.rank() < 0 || p.rank() >= a.world_size()) {
      return "assignment: rank " + std::to_string(p.rank()) + " is outside world_size " +
             std::to_string(a.world_size());
    }
    if (p.slots_size() == 0)
      return "assignment: rank " + std::to_string(p.rank()) + " has no slots";
    for (int s : p.slots()) {
      if (s < 0 || s >= options_.slots) {
        return "assignment: slot " + std::to_string(s) + " of rank " + std::to_string(p.rank()) +
               " is out of range (this worker has " + std::to_string(options_.slots) + ")";
      }
      if (busy.count(s) != 0 || !mine.insert(s).second) {
        return "assignment: slot " + std::to_string(s) + " is already in use";
      }
      slots->push_back(s);
    }
  }
  return "";
}

void Supervisor::Assign(const v1::Assignment& a) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto key = std::make_pair(a.job_id(), a.attempt());
  if (runs_.count(key) != 0) {
    spdlog::info("job {} attempt {}: already running here; assignment ignored", a.job_id(),
                 a.attempt());
    return;
  }
  if (shutting_down_) {
    // An assignment that crossed our `shutting_down` on the wire: the scheduler stops it as a
    // preemption when that message arrives; these ranks never start.
    spdlog::info("job {} attempt {}: not started, this worker is shutting down", a.job_id(),
                 a.attempt());
    for (const v1::RankPlacement& p : a.ranks()) {
      v1::WorkerMessage m = Update(a.job_id(), a.attempt(), p.rank(), v1::RankUpdate::EXITED);
      m.mutable_update()->set_exit(v1::RankUpdate::STOPPED);
      m.mutable_update()->set_reason("not started: the worker is shutting down");
      outbox_->Push(std::move(m));
    }
    return;
  }
  auto run = std::make_unique<Run>();
  run->job_id = a.job_id();
  run->attempt = a.attempt();
  if (std::string bad = CheckAssignmentLocked(a, &run->slots); !bad.empty()) {
    ReportFailure(a, bad);
    return;
  }
  for (const v1::RankPlacement& p : a.ranks()) run->ranks.push_back(p.rank());
  const int slots_per_rank = a.ranks(0).slots_size();

  const std::string run_dir = options_.work_dir + "/jobs/" + SafeName(a.job_id()) + "/attempt-" +
                              std::to_string(a.attempt());
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return ReportFailure(a, "cannot create " + run_dir + ": " + ec.message());
  if (a.checkpoint_dir().empty()) {
    return ReportFailure(a, "assignment: checkpoint_dir is empty");
  }
  fs::create_directories(a.checkpoint_dir(), ec);
  if (ec) {
    return ReportFailure(
        a, "cannot create checkpoint dir " + a.checkpoint_dir() + ": " + ec.message());
  }
  JobPaths paths;
  paths.job_id = a.job_id();
  paths.attempt = a.attempt();
  paths.checkpoint_dir = a.checkpoint_dir();
  paths.output_dir = run_dir + "/output";
  paths.threads = options_.slot_kind == "cpu" ? slots_per_rank : 0;
  paths.data_roots.assign(a.data_roots().begin(), a.data_roots().end());
  paths.init_checkpoint = a.init_checkpoint();
  StatusOr<std::string> yaml = TrainYamlFromJobSpec(a.spec(), paths);
  if (!yaml.ok()) return ReportFailure(a, "invalid job config: " + yaml.status().message());
  if (Status st = ValidateTrainYaml(*yaml); !st.ok()) {
    return ReportFailure(a, "invalid job config: " + st.message());
  }
  const std::string config_path = run_dir + "/config.yaml";
  {
    std::ofstream out(config_path, std::ios::trunc);
    out << *yaml;
    if (!out.good()) return ReportFailure(a, "cannot write " + config_path);
  }

  RankGroupSpec spec;
  spec.command = {options_.trainer,
                  "--config",
                  config_path,
                  "--resume",
                  "auto",
                  "--events-fd",
                  "3",
                  "--job-id",
                  a.job_id(),
                  "--log-level",
                  options_.trainer_log_level};
  spec.first_rank = a.ranks(0).rank();
  spec.nproc = a.ranks_size();
  spec.world_size = a.world_size();
  if (!a.scheduler_address().empty()) spec.rdzv = "scheduler://" + a.scheduler_address();
  spec.rdzv_id = a.rendezvous_id();
  spec.env = {{"DYT_JOB_ID", a.job_id()}, {"DYT_JOB_ATTEMPT", std::to_string(a.attempt())}};
  if (!options_.dist_host.empty()) spec.env.push_back({"DYT_DIST_HOST", options_.dist_host});
  if (!options_.scheduler_ca_file.empty()) {
    spec.env.push_back({"DYT_SCHEDULER_CA_FILE", options_.scheduler_ca_file});
  }
  if (!options_.scheduler_token_file.empty()) {
    spec.env.push_back({"DYT_SCHEDULER_TOKEN_FILE", options_.scheduler_token_file});
  }
  if (options_.slot_kind == "cpu") {
    spec.env.push_back({"OMP_NUM_THREADS", std::to_string(slots_per_rank)});
  } else {
    for (const v1::RankPlacement& p : a.ranks()) {
      spec.rank_env.push_back({{"CUDA_VISIBLE_DEVICES",
                                Join(std::vector<int>(p.slots().begin(), p.slots().end()), ",")}});
    }
  }
  spec.grace = options_.peer_failure_grace;
  spec.tail_lines = options_.tail_lines;

  Run* r = run.get();  // the callbacks touch only what the group's thread owns
  r->stall_timeout_s = a.spec().stall_timeout_s();
  r->last_activity_ns = SteadyNanos();
  RankGroupCallbacks cb;
  cb.started = [this, r](int rank, pid_t pid) {
    r->last_activity_ns = SteadyNanos();
    spdlog::info("job {} attempt {}: rank {} started (pid {})", r->job_id, r->attempt, rank, pid);
    r->logs->Open(rank);
    outbox_->Push(Update(r->job_id, r->attempt, rank, v1::RankUpdate::STARTED));
  };
  run->logs = std::make_unique<RankLogs>(run_dir, options_.rank_log_max_bytes);
  cb.output = [this, r](int rank, const std::string& line) {
    r->last_activity_ns = SteadyNanos();
    r->logs->Append(rank, line);
    outbox_->AddLogLine(r->job_id, r->attempt, rank, line);
  };
  cb.event = [this, r](int rank, const std::string& line) {
    r->last_activity_ns = SteadyNanos();
    StatusOr<ParsedEvent> e = ParseEventLine(line);
    if (!e.ok()) {
      spdlog::warn("job {} rank {}: {}", r->job_id, rank, e.status().message());
      return;
    }
    switch (e->kind) {
      case ParsedEvent::Kind::kStart:
        if (rank == 0 && metrics_ != nullptr) metrics_->JobModel(r->job_id, e->model);
        return;
      case ParsedEvent::Kind::kStep:
      case ParsedEvent::Kind::kEval: {
        if (rank != 0) return;
        r->progress.Merge(*e);
        v1::WorkerMessage m = Update(r->job_id, r->attempt, rank, v1::RankUpdate::PROGRESS);
        *m.mutable_update()->mutable_progress() = r->progress.progress();
        outbox_->Push(std::move(m));
        if (metrics_ == nullptr) return;
        if (e->kind == ParsedEvent::Kind::kStep) {
          metrics_->JobStep(r->job_id, r->progress.progress(), e->step_seconds, e->has_alpha);
        } else {
          metrics_->JobEval(r->job_id, e->progress.val_loss());
        }
        return;
      }
      case ParsedEvent::Kind::kCheckpoint: {
        if (rank == 0) r->progress.Merge(*e);
        v1::WorkerMessage m;
        v1::CheckpointRecord* c = m.mutable_checkpoint()->mutable_checkpoint();
        *c = e->checkpoint;
        c->set_job_id(r->job_id);
        c->set_attempt(r->attempt);
        // The trainer's own val_loss for this checkpoint, else the latest evaluation's.
        if (c->val_loss() == 0) c->set_val_loss(r->progress.progress().val_loss());
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        c->mutable_created()->set_seconds(
            std::chrono::duration_cast<std::chrono::seconds>(now).count());
        spdlog::info("job {} attempt {}: checkpoint at step {} in {}", r->job_id, r->attempt,
                     c->step(), c->path());
        outbox_->Push(std::move(m));
        if (metrics_ != nullptr) {
          metrics_->JobCheckpoint(r->job_id, e->checkpoint.step(), e->checkpoint.total_bytes(),
                                  e->checkpoint_seconds);
        }
        return;
      }
      case ParsedEvent::Kind::kError:
        r->last_error = e->message.substr(0, 300);
        return;
      case ParsedEvent::Kind::kOther:
        return;
    }
  };
  cb.exited = [this, r](int rank, const dist::ChildOutcome& outcome,
                        const std::vector<std::string>& tail, int failed_peer, StopCause stop) {
    ExitContext context;
    context.stop = stop;
    context.failed_peer_rank = failed_peer;
    context.stall_timeout_s = r->stall_timeout_s;
    // The "error" event comes from rank 0's events pipe: it explains rank 0's end only. Another
    // rank is explained by its own output (a rank killed by a signal was said to have failed
    // with rank 0's "waiting for data from rank 1").
    context.last_error = rank == 0 && !r->last_error.empty() ? r->last_error : LastErrorLine(tail);
    v1::WorkerMessage m;
    *m.mutable_update() = ClassifyExit(outcome, context);
    v1::RankUpdate* u = m.mutable_update();
    u->set_job_id(r->job_id);
    u->set_attempt(r->attempt);
    u->set_rank(rank);
    if (u->exit() == v1::RankUpdate::FAILED) u->set_stderr_tail(JoinLines(tail));
    // The last progress goes with the exit, so the scheduler has the final step and loss even
    // when progress reports were lost (e.g. while it restarted).
    if (rank == 0) *u->mutable_progress() = r->progress.progress();
    spdlog::info("job {} attempt {}: rank {} {}: {}", r->job_id, r->attempt, rank,
                 v1::RankUpdate::Exit_Name(u->exit()), u->reason());
    outbox_->Push(std::move(m));
  };
  StatusOr<std::unique_ptr<RankGroup>> group = RankGroup::Start(std::move(spec), std::move(cb));
  if (!group.ok()) {
    return ReportFailure(a, "cannot start the trainer: " + group.status().message());
  }
  r->group = std::move(*group);
  if (metrics_ != nullptr) {
    if (a.attempt() > 1) metrics_->JobRestart();
    // Rank 0's worker reads the job's events, so it alone exports the job's series.
    if (r->ranks.front() == 0) {
      metrics_->JobStarted(a.job_id(), a.world_size() * slots_per_rank, a.spec().train().seq_len());
    }
  }
  spdlog::info("job {} attempt {}: started ranks {}..{} of {} on slots {}", a.job_id(), a.attempt(),
               r->ranks.front(), r->ranks.back(), a.world_size(), Join(r->slots, ","));
  runs_[key] = std::move(run);
}

void Supervisor::Stop(const v1::StopJob& stop) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find({stop.job_id(), stop.attempt()});
  if (it == runs_.end() || it->second->group == nullptr) {
    spdlog::info("stop job {} attempt {}: not running here", stop.job_id(), stop.attempt());
    return;
  }
  const milliseconds grace =
      stop.grace_ms() > 0 ? milliseconds(stop.grace_ms()) : options_.stop_grace;
  spdlog::info("job {} attempt {}: stopping ({}), SIGKILL after {} ms", stop.job_id(),
               stop.attempt(), v1::StopJob::Reason_Name(stop.reason()), grace.count());
  it->second->group->RequestStop(StopCauseFromReason(stop.reason()), grace);
}

void Supervisor::StopAll(StopCause cause, milliseconds grace) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cause == StopCause::kShutdown) shutting_down_ = true;
  for (auto& [key, run] : runs_) {
    if (run->group != nullptr && !run->group->done()) {
      spdlog::info("job {} attempt {}: stopping ({})", run->job_id, run->attempt,
                   StopCauseName(cause));
      run->group->RequestStop(cause, grace);
    }
  }
}

std::vector<v1::RunningRank> Supervisor::Running() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::RunningRank> out;
  for (const auto& [key, run] : runs_) {
    if (run->group == nullptr || run->group->done()) continue;
    for (int rank : run->ranks) {
      v1::RunningRank rr;
      rr.set_job_id(run->job_id);
      rr.set_attempt(run->attempt);
      rr.set_rank(rank);
      for (int slot : run->slots) rr.add_slots(slot);
      out.push_back(rr);
    }
  }
  return out;
}

std::vector<int> Supervisor::Pids(const std::string& job_id, int attempt) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find({job_id, attempt});
  if (it == runs_.end() || it->second->group == nullptr) return {};
  std::vector<int> out;
  for (pid_t p : it->second->group->pids()) out.push_back(static_cast<int>(p));
  return out;
}

int Supervisor::busy_slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [key, run] : runs_) n += static_cast<int>(run->slots.size());
  return n;
}

int Supervisor::running_attempts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(runs_.size());
}

size_t Supervisor::PruneWorkDir(std::chrono::seconds keep) {
  // Under mu_: Assign creates attempt directories under it, so none is removed while made.
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> active;
  for (const auto& [key, run] : runs_) {
    active.insert(SafeName(key.first) + "/attempt-" + std::to_string(key.second));
  }
  PruneReport report = PruneAttemptDirs(options_.work_dir, active, keep);
  for (const auto& dir : report.deleted) spdlog::info("retention: deleted {}", dir);
  for (const auto& error : report.errors) spdlog::warn("retention: {}", error);
  return report.deleted.size();
}

void Supervisor::StopIfStalled(Run& run) {
  if (run.stall_timeout_s <= 0 || run.stalled) return;
  const int64_t silent_ns = SteadyNanos() - run.last_activity_ns.load();
  if (silent_ns < int64_t{run.stall_timeout_s} * 1000000000) return;
  run.stalled = true;
  spdlog::warn(
      "job {} attempt {}: no output or event from its trainers for {} s "
      "(stall_timeout_s): stopping them as hung",
      run.job_id, run.attempt, silent_ns / 1000000000);
  run.group->RequestStop(StopCause::kStalled, options_.stop_grace);
}

void Supervisor::Reap() {
  std::vector<std::unique_ptr<Run>> ended;
  int slots = 0, trainers = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = runs_.begin(); it != runs_.end();) {
      if (it->second->group == nullptr || it->second->group->done()) {
        ended.push_back(std::move(it->second));
        it = runs_.erase(it);
      } else {
        StopIfStalled(*it->second);
        slots += static_cast<int>(it->second->slots.size());
        trainers += static_cast<int>(it->second->ranks.size());
        ++it;
      }
    }
  }
  if (metrics_ != nullptr) {
    for (const auto& run : ended) {
      bool still_here = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [key, r] : runs_) still_here = still_here || key.first == run->job_id;
      }
      if (!still_here) metrics_->RemoveJob(run->job_id);
    }
    metrics_->SetBusy(slots, trainers);
  }
  ended.clear();  // joins the finished groups' threads
}

bool Supervisor::WaitIdle(milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    Reap();
    if (running_attempts() == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

}  // namespace dyt::worker
