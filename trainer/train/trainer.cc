#include "trainer/train/trainer.h"

#include <fcntl.h>
#include <omp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <sstream>
#include <string>

#include "common/same_file.h"
#include "trainer/checkpoint/attempt_fence.h"
#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/checkpoint_writer.h"
#include "trainer/checkpoint/retention.h"
#include "trainer/train/make_backend.h"
#include "trainer/train/rank_agreement.h"

namespace dyt {

Trainer::Trainer(const TrainConfig& config, EventWriter* events, dist::Communicator* comm)
    : config_(config), events_(events), comm_(comm) {}

namespace {

// Ends the message of a checkpoint the config cannot continue.
constexpr const char* kCannotContinue =
    "; this config cannot continue it: resume with the config that saved it, or start a new run "
    "in an empty checkpoint.dir";

// INVALID_ARGUMENT naming checkpoint.dir unless `dir` exists (created when missing) and a file
// can be created in it.
Status ProbeWritableDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return InvalidArgument("checkpoint.dir " + dir + ": cannot create the directory" +
                           (ec ? " (" + ec.message() + ")" : std::string(" (not a directory)")));
  }
  const std::string probe = JoinPath(dir, TempName("write-probe"));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return InvalidArgument("checkpoint.dir " + dir + ": cannot write in it (" +
                           std::strerror(errno) + ")");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::Ok();
}

// The cpu backend keeps fp32 weights, gradients and two AdamW moments of every parameter, and
// a batch of activations per layer: refused (INVALID_ARGUMENT) when that alone exceeds this
// machine's memory, instead of ending in std::bad_alloc (or the OOM killer) mid-allocation.
Status CheckFitsInMemory(const TrainConfig& config) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return Status::Ok();
  const double machine = double(pages) * double(page);
  const ModelConfig& m = config.model;
  const double state = 16.0 * double(m.ParameterCount());
  // A lower bound on what the forward pass keeps: the residual stream, per layer and token.
  const double tokens = double(config.train.batch_size) * double(config.train.seq_len);
  const double activations =
      4.0 * tokens * double(m.dim) * double(m.n_layers + 1) + 4.0 * tokens * double(m.vocab_size);
  if (state + activations <= machine) return Status::Ok();
  auto gib = [](double bytes) {
    std::ostringstream out;
    out.precision(3);
    out << bytes / double(1 << 30) << " GiB";
    return out.str();
  };
  return InvalidArgument(
      "model and train: " + std::to_string(m.ParameterCount()) + " parameters need " + gib(state) +
      " for fp32 weights, gradients and AdamW moments, and a batch of " +
      std::to_string(int64_t(tokens)) + " tokens at least " + gib(activations) +
      " of activations; this machine has " + gib(machine) +
      " (a smaller model.* or train.batch_size x train.seq_len, or train.device: cuda)");
}

}  // namespace

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainConfig& config, EventWriter* events,
                                                   dist::Communicator* comm) {
  if (config.train.threads > 0) omp_set_num_threads(config.train.threads);
  if (config.train.device == TrainDevice::kCpu) DYT_RETURN_IF_ERROR(CheckFitsInMemory(config));
  std::unique_ptr<Trainer> t(new Trainer(config, events, comm));
  const TrainSection& tr = config.train;
  const int world = t->world_size(), rank = t->rank();
  DYT_ASSIGN_OR_RETURN(t->data_, OpenBatchSource(config, rank, world));
  // Before any collective whose shape comes from the config (rank_agreement.h).
  DYT_RETURN_IF_ERROR(CheckRanksAgree(
      AgreementLines(config, t->data_->tokenizer_id(), t->data_->num_train_tokens()), comm));
  auto backend = MakeTrainBackend(config, comm);
  // Every rank learns whether every backend came up before the first collective on them (a
  // rank left waiting in a GPU broadcast for a peer that gave up would wait forever).
  DYT_ASSIGN_OR_RETURN(const double failed, t->SumOverRanks(backend.ok() ? 0.0 : 1.0));
  if (!backend.ok()) return backend.status();
  if (failed > 0) {
    return FailedPrecondition(
        "train: " + std::to_string(int(failed)) + " peer rank(s) could not set up train.device " +
        (config.train.device == TrainDevice::kCuda ? "cuda" : "cpu") + " (their logs say why)");
  }
  // Evaluation needs a batch of validation windows on every rank: found now, not at the first
  // eval after hours of training. Agreed on, so no rank goes on alone into a collective.
  const bool val_short = tr.eval_every > 0 && t->data_->num_val_batches(tr.batch_size) <= 0;
  // The checkpoint store (rank 0 writes it) is created and written to now, not at the first
  // save after hours of training.
  Status store = Status::Ok();
  if (rank == 0 && !config.checkpoint.dir.empty()) store = ProbeWritableDir(config.checkpoint.dir);
  DYT_ASSIGN_OR_RETURN(const double short_ranks,
                       t->SumOverRanks((val_short ? 1.0 : 0.0) + (store.ok() ? 0.0 : 1000.0)));
  if (!store.ok()) return store;
  if (short_ranks >= 1000) return InvalidArgument("checkpoint.dir: rank 0 cannot write it");
  if (short_ranks > 0) {
    const std::string got = val_short
                                ? "this rank has " + std::to_string(t->data_->num_val_batches(1))
                                : "another rank has fewer";
    return InvalidArgument(
        "train.eval_every: " + std::to_string(tr.eval_every) +
        " evaluates on batches of train.batch_size (" + std::to_string(tr.batch_size) +
        ") validation windows per rank, and " + got +
        (config.data.shards.val_paths.empty() && config.data.shards.val_fraction <= 0
             ? ": set data.val_paths (or data.val_fraction), or train.eval_every: 0"
             : ": give more validation data, a smaller batch, or train.eval_every: 0"));
  }
  t->backend_ = std::move(backend).value();
  t->inputs_.resize(size_t(tr.batch_size) * tr.seq_len);
  t->targets_.resize(t->inputs_.size());
  DYT_RETURN_IF_ERROR(t->backend_->BroadcastParams());
  return t;
}

StatusOr<double> Trainer::SumOverRanks(double value) {
  if (world_size() == 1) return value;
  float v = float(value);
  DYT_RETURN_IF_ERROR(comm_->AllReduce(&v, 1, dist::ReduceOp::kSum));
  return double(v);
}

StatusOr<int64_t> Trainer::BroadcastFromRank0(int64_t value) {
  if (world_size() == 1) return value;
  // The bits travel as two floats: a broadcast copies bits and never does arithmetic.
  float words[sizeof(int64_t) / sizeof(float)];
  std::memcpy(words, &value, sizeof(value));
  DYT_RETURN_IF_ERROR(comm_->Broadcast(words, std::size(words), 0));
  std::memcpy(&value, words, sizeof(value));
  return value;
}

// Ranks must agree to stop at the same point, or one would wait for the other forever. One
// all-reduce carries both votes: a stop signal on any rank, and rank 0 finding the store claimed
// by a later attempt of the job.
StatusOr<bool> Trainer::StopAgreed(const ShutdownSignal* stop) {
  const bool local = stop != nullptr && stop->requested();
  float votes[2] = {local ? 1.0f : 0.0f, SupersededLately() ? 1.0f : 0.0f};
  if (world_size() > 1) DYT_RETURN_IF_ERROR(comm_->AllReduce(votes, 2, dist::ReduceOp::kSum));
  if (votes[1] > 0 && !superseded_) {
    superseded_ = true;
    spdlog::error(
        "a later attempt of this job has claimed {} (this is attempt {}): stopping at step {} "
        "without saving; the later attempt continues the job",
        config_.checkpoint.dir, config_.job_attempt, step());
    return true;
  }
  if (votes[0] > 0 && !stop_logged_) {
    stop_logged_ = true;
    if (local) {
      spdlog::warn("stop requested (signal {}) at step {}", stop->signal_number(), step());
    } else {
      spdlog::warn("stop requested by another rank at step {}", step());
    }
  }
  return votes[0] > 0 || superseded_;
}

bool Trainer::SupersededLately() {
  // A stat and a read of a few bytes, but on a network file system, so at most every few
  // seconds: a stale attempt stops within a step of this after the later one starts.
  constexpr auto kEvery = std::chrono::seconds(5);
  const auto now = std::chrono::steady_clock::now();
  if (superseded_) return true;
  if (now - last_fence_check_ < kEvery) return false;
  last_fence_check_ = now;
  return Superseded();
}

StatusOr<StepStats> Trainer::TrainStep(const ShutdownSignal* stop) {
  const auto t0 = std::chrono::steady_clock::now();
  const TrainSection& tr = config_.train;
  StepStats s;
  DYT_RETURN_IF_ERROR(backend_->ZeroGrads());
  // Where the step's data starts: a step abandoned for a stop gives its batches back, so the
  // checkpoint (of the last whole step) resumes on exactly them.
  const LoaderPosition first_batch = data_->position();
  const uint64_t first_rng = data_->rng_state();
  double loss = 0;
  for (int micro = 0; micro < tr.grad_accum; ++micro) {
    // Between micro-batches a stop ends the step at once (the parameters are untouched until
    // the update), so a long step (many micro-batches) does not outlast the stopper's grace.
    // Every rank votes at the same micro-batch, before any collective of the next one.
    if (micro > 0 && stop != nullptr) {
      DYT_ASSIGN_OR_RETURN(const bool stopping, StopAgreed(stop));
      if (stopping) {
        DYT_RETURN_IF_ERROR(data_->Restore(first_batch, first_rng));
        if (rank() == 0) {
          spdlog::warn("abandoned step {} after {} of {} micro-batches", step() + 1, micro,
                       tr.grad_accum);
        }
        s.abandoned = true;
        s.step = step();
        return s;
      }
    }
    data_->Next(tr.batch_size, inputs_.data(), targets_.data());
    DYT_ASSIGN_OR_RETURN(const double l,
                         backend_->ForwardBackward(inputs_.data(), targets_.data(), tr.batch_size,
                                                   1.0f / float(tr.grad_accum)));
    loss += l;
  }
  DYT_ASSIGN_OR_RETURN(const double loss_sum, SumOverRanks(loss / tr.grad_accum));
  s.loss = loss_sum / world_size();
  last_loss_ = s.loss;
  s.lr = config_.optim.schedule.At(backend_->step());
  DYT_ASSIGN_OR_RETURN(s.grad_norm, backend_->ReduceAndUpdate(s.lr, config_.optim.grad_clip));
  s.step = backend_->step();
  tokens_seen_ += tokens_per_step();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.tokens_per_s = double(tokens_per_step()) / s.seconds;
  return s;
}

StatusOr<double> Trainer::Evaluate() {
  const int B = config_.train.batch_size;
  const int64_t n = std::min<int64_t>(config_.train.eval_batches, data_->num_val_batches(B));
  if (n <= 0)
    return FailedPrecondition("no validation data (set data.val_paths or data.val_fraction)");
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    DYT_RETURN_IF_ERROR(data_->ValidationBatch(i, B, inputs_.data(), targets_.data()));
    DYT_ASSIGN_OR_RETURN(const double l, backend_->Loss(inputs_.data(), targets_.data(), B));
    sum += l;
  }
  // Every rank evaluates its own validation windows: average over ranks.
  DYT_ASSIGN_OR_RETURN(const double total, SumOverRanks(sum / double(n)));
  last_val_loss_ = total / world_size();
  return last_val_loss_;
}

void Trainer::Emit(nlohmann::json event) {
  if (events_ && rank() == 0) events_->Emit(std::move(event));
}

void Trainer::Log(const StepStats& s) {
  if (rank() != 0) return;
  auto alpha_values = backend_->Alphas();
  if (!alpha_values.ok()) spdlog::warn("reading DyT alphas: {}", alpha_values.status().ToString());
  const std::vector<float> alphas = alpha_values.ok() ? *alpha_values : std::vector<float>{};
  std::string alpha_text;
  nlohmann::json ev = {{"event", "step"},
                       {"step", s.step},
                       {"steps", config_.train.steps},
                       {"loss", s.loss},
                       {"lr", s.lr},
                       {"grad_norm", s.grad_norm},
                       {"tokens_per_s", s.tokens_per_s},
                       {"step_seconds", s.seconds},
                       {"tokens", s.step * tokens_per_step()}};
  if (!alphas.empty()) {
    const auto [mn, mx] = std::minmax_element(alphas.begin(), alphas.end());
    double mean = 0;
    for (float a : alphas) mean += a;
    mean /= double(alphas.size());
    ev["alpha"] = alphas;  // per DyT layer: (attention, ffn) per block, then final
    ev["alpha_min"] = *mn;
    ev["alpha_mean"] = mean;
    ev["alpha_max"] = *mx;
    char buf[96];
    std::snprintf(buf, sizeof(buf), " alpha[min %.3f mean %.3f max %.3f final %.3f]", *mn, mean,
                  *mx, alphas.back());
    alpha_text = buf;
  }
  spdlog::info("step {}/{} loss {:.4f} lr {:.3e} grad_norm {:.3f} {:.0f} tok/s{}", s.step,
               config_.train.steps, s.loss, s.lr, s.grad_norm, s.tokens_per_s, alpha_text);
  Emit(std::move(ev));
}

StatusOr<RunOutcome> Trainer::Run(const ShutdownSignal* stop) {
  const TrainSection& tr = config_.train;
  const CheckpointSection& ck = config_.checkpoint;
  if (rank() == 0) {
    spdlog::info("model: {}", config_.model.Summary());
    spdlog::info(
        "train: steps {}..{} x {} tokens (batch {} x accum {} x seq {} x {} ranks) on {}: {}",
        step(), tr.steps, tokens_per_step(), tr.batch_size, tr.grad_accum, tr.seq_len, world_size(),
        backend_->name(), backend_->DeviceSummary());
    if (step() >= tr.steps && step() > 0) {
      spdlog::warn(
          "resumed at step {}, train.steps is {}: nothing left to train (a larger "
          "train.steps, or --steps, goes on)",
          step(), tr.steps);
    }
  }
  Emit({{"event", "start"},
        {"step", step()},
        {"steps", tr.steps},
        {"world_size", world_size()},
        {"device", backend_->name()},
        {"params", config_.model.ParameterCount()},
        {"model", nlohmann::json::parse(ModelConfigToJson(config_.model))}});
  last_save_time_ = std::chrono::steady_clock::now();
  const int64_t last = tr.stop_at_step > 0 ? std::min(tr.steps, tr.stop_at_step) : tr.steps;
  // A stop agreed on by every rank (StopAgreed), between steps or inside one: save, say so.
  // Nothing to save before the first step (a resume then starts fresh, as this run did).
  auto stopped = [&]() -> StatusOr<RunOutcome> {
    if (superseded_) {
      Emit({{"event", "error"},
            {"step", step()},
            {"message", "superseded: a later attempt of this job has claimed " + ck.dir}});
      return RunOutcome::kSuperseded;
    }
    if (!ck.dir.empty() && last_saved_step_ != step() && step() > 0) {
      DYT_RETURN_IF_ERROR(SaveCheckpoint());
    }
    Emit({{"event", "stopped"}, {"step", step()}, {"signal", stop ? stop->signal_number() : 0}});
    return RunOutcome::kStopped;
  };
  while (step() < last) {
    DYT_ASSIGN_OR_RETURN(const bool stopping, StopAgreed(stop));
    if (stopping) return stopped();
    DYT_ASSIGN_OR_RETURN(const StepStats s, TrainStep(stop));
    if (s.abandoned) return stopped();
    // A stop is honoured between micro-batches: a stopper that waits less than one (the
    // worker's grace, 30 s by default) kills the trainer and loses the work since the last
    // checkpoint. Said once, where the operator will look.
    constexpr double kSlowMicroBatchSeconds = 20;
    const double micro_seconds = s.seconds / tr.grad_accum;
    if (rank() == 0 && micro_seconds > kSlowMicroBatchSeconds && !warned_slow_step_) {
      warned_slow_step_ = true;
      spdlog::warn(
          "a micro-batch took {:.0f} s: SIGTERM is honoured between micro-batches, so whoever "
          "stops this run must wait longer than that plus a checkpoint save (dyt-scheduler "
          "--stop-grace-s, 30 s by default) or the steps since the last checkpoint are lost; a "
          "smaller train.batch_size (with more train.grad_accum) shortens it",
          micro_seconds);
    }
    if (!std::isfinite(s.loss)) {
      Emit({{"event", "error"}, {"step", s.step}, {"message", "loss is not finite"}});
      return Internal("loss is not finite at step " + std::to_string(s.step));
    }
    if (s.step % tr.log_every == 0 || s.step == 1 || s.step == tr.steps) Log(s);
    if (tr.eval_every > 0 && (s.step % tr.eval_every == 0 || s.step == tr.steps)) {
      DYT_ASSIGN_OR_RETURN(const double val, Evaluate());
      if (rank() == 0) spdlog::info("eval step {} val_loss {:.4f}", s.step, val);
      Emit({{"event", "eval"}, {"step", s.step}, {"val_loss", val}});
    }
    const double minutes =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - last_save_time_).count() /
        60.0;
    // Time-based saves are decided by rank 0's clock and agreed on, like stops.
    const bool time_due = ck.every_minutes > 0 && minutes >= ck.every_minutes && rank() == 0;
    DYT_ASSIGN_OR_RETURN(const double time_votes, SumOverRanks(time_due ? 1.0 : 0.0));
    const bool due = (ck.every_steps > 0 && s.step % ck.every_steps == 0) || time_votes > 0 ||
                     s.step == tr.steps;
    if (!ck.dir.empty() && due) DYT_RETURN_IF_ERROR(SaveCheckpoint());
  }
  if (step() < tr.steps) {  // stopped at train.stop_at_step
    if (!ck.dir.empty() && last_saved_step_ != step()) DYT_RETURN_IF_ERROR(SaveCheckpoint());
    Emit({{"event", "paused"}, {"step", step()}, {"loss", last_loss_}});
    return RunOutcome::kPaused;
  }
  Emit({{"event", "done"}, {"step", step()}, {"loss", last_loss_}});
  return RunOutcome::kFinished;
}

Status Trainer::RefuseUsedStore(const std::string& foreign) {
  const std::string& store = config_.checkpoint.dir;
  if (store.empty()) return Status::Ok();
  int64_t newest = 0;  // rank 0's store is the one checkpoints go to
  if (rank() == 0) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(store, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (auto step = ParseStepDirName(it->path().filename().string())) {
        newest = std::max(newest, *step);
      }
    }
  }
  DYT_ASSIGN_OR_RETURN(newest, BroadcastFromRank0(newest));
  if (newest == 0) return Status::Ok();
  // A fresh run would write its steps among the old run's and move `latest` back: a store
  // mixed from two runs, whose retention may keep the old run's checkpoints over the new one's.
  // So would a run going on from another store's checkpoint.
  if (!foreign.empty()) {
    return InvalidArgument("checkpoint.dir " + store +
                           " holds checkpoints of a run (newest: step " + std::to_string(newest) +
                           "); going on from " + foreign +
                           ", of another store, there would mix two runs: choose an empty "
                           "checkpoint.dir (or output.dir), or --resume auto to continue its own");
  }
  return InvalidArgument("checkpoint.dir " + store +
                         " holds checkpoints of an earlier run (newest: step " +
                         std::to_string(newest) +
                         "): --resume auto continues it; for a new run choose an empty "
                         "checkpoint.dir (or output.dir)");
}

StatusOr<CheckpointState> Trainer::Snapshot() {
  CheckpointState st;
  DYT_ASSIGN_OR_RETURN(HostTrainState state, backend_->ExportState());
  st.params = std::move(state.params);
  st.adam_m = std::move(state.adam_m);
  st.adam_v = std::move(state.adam_v);
  st.adam_step = state.adam_step;
  st.model_config_json = ModelConfigToJson(config_.model);
  st.train_config_yaml = config_.source_yaml;
  st.step = step();
  st.tokens_seen = tokens_seen_;
  st.loader = data_->position();
  st.rng_state = data_->rng_state();
  st.meta.job_id = config_.job_id;
  st.meta.attempt = config_.job_attempt;
  st.meta.train_loss = last_loss_;
  st.meta.val_loss = last_val_loss_;
  st.meta.unix_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  st.meta.code_version = DYT_VERSION;
  st.meta.world_size = world_size();
  st.meta.tokenizer_id = data_->tokenizer_id();
  return st;
}

Status Trainer::SaveCheckpoint() {
  const CheckpointSection& ck = config_.checkpoint;
  if (ck.dir.empty()) return FailedPrecondition("checkpoint.dir: not set");
  DYT_ASSIGN_OR_RETURN(CheckpointState state, Snapshot());
  last_saved_step_ = step();
  last_save_time_ = std::chrono::steady_clock::now();
  if (rank() != 0) return Status::Ok();  // one writer per store: rank 0
  if (Superseded()) {
    spdlog::warn(
        "checkpoint of step {} not saved: a later attempt of this job has taken over {} "
        "(this is attempt {}); its checkpoints are left alone",
        step(), ck.dir, config_.job_attempt);
    return Status::Ok();
  }
  SaveResult saved;
  DYT_RETURN_IF_ERROR(dyt::SaveCheckpoint(ck.dir, state, backend_->layout(), &saved));
  spdlog::info("checkpoint saved: {} ({:.1f} MB in {:.2f} s)", saved.dir, saved.bytes / 1e6,
               saved.seconds);
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : saved.files) {
    files.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}});
  }
  Emit({{"event", "checkpoint"},
        {"step", step()},
        {"dir", saved.dir},
        {"bytes", saved.bytes},
        {"seconds", saved.seconds},
        {"loss", last_loss_},
        {"val_loss", last_val_loss_},
        {"files", files}});
  RetentionReport report;
  const Status r = ApplyRetention(ck.dir, ck.keep_last, ck.keep_every_steps, &report);
  for (const auto& d : report.deleted) spdlog::info("retention: deleted {}", d);
  for (const auto& w : report.warnings) spdlog::warn("retention: {}", w);
  if (!r.ok()) spdlog::warn("retention failed (checkpoint kept): {}", r.ToString());
  return Status::Ok();
}

Status Trainer::Restore(const CheckpointState& st) {
  // Parameters and moments first (the backend checks their sizes), then the data position.
  HostTrainState state{st.params, st.adam_m, st.adam_v, st.adam_step};
  DYT_RETURN_IF_ERROR(backend_->ImportState(state));
  // The loader position counts windows of one rank's share; rank r of W reads the epoch's
  // permutation entries r, r + W, ...  On a different world size the same global point is
  // index * W_old / W_new, which must be whole.
  LoaderPosition pos = st.loader;
  const int64_t old_world = std::max(1, st.meta.world_size);
  if (old_world != world_size()) {
    const uint64_t consumed = pos.index * uint64_t(old_world);
    if (consumed % uint64_t(world_size()) != 0) {
      return InvalidArgument("checkpoint: saved on " + std::to_string(old_world) +
                             " ranks at data window " + std::to_string(consumed) + ", which " +
                             std::to_string(world_size()) +
                             " ranks cannot split evenly; resume on a world size that divides it");
    }
    pos.index = consumed / uint64_t(world_size());
  }
  DYT_RETURN_IF_ERROR(data_->Restore(pos, st.rng_state).WithContext("checkpoint"));
  last_loss_ = st.meta.train_loss;
  last_val_loss_ = st.meta.val_loss;
  last_saved_step_ = st.step;
  tokens_seen_ = st.tokens_seen;
  return Status::Ok();
}

Status Trainer::CheckContinues(StatusOr<CheckpointState> loaded, CheckpointState* state) const {
  // The store answers FAILED_PRECONDITION for an intact checkpoint this run must not use
  // (another model config, another format version): the config is wrong, not the checkpoint,
  // so it is a configuration error (exit 2, not retried).
  if (!loaded.ok() && loaded.status().code() == StatusCode::kFailedPrecondition) {
    return InvalidArgument(loaded.status().message() + kCannotContinue);
  }
  if (!loaded.ok()) return loaded.status();
  const std::string& saved = loaded->meta.tokenizer_id;
  const std::string now = data_->tokenizer_id();
  if (!saved.empty() && !now.empty() && saved != now) {
    return InvalidArgument("tokenizer mismatch: the checkpoint at step " +
                           std::to_string(loaded->step) + " was trained on data of tokenizer " +
                           saved + ", the configured data is of tokenizer " + now +
                           kCannotContinue);
  }
  *state = std::move(loaded).value();
  return Status::Ok();
}

bool Trainer::Superseded() {
  if (config_.job_attempt <= 0 || config_.checkpoint.dir.empty() || rank() != 0) return false;
  auto claimed = claimed_ ? StoreAttempt(config_.checkpoint.dir)
                          : ClaimStore(config_.checkpoint.dir, config_.job_attempt);
  if (!claimed.ok()) {
    spdlog::warn("checkpoint store {}: {}", config_.checkpoint.dir, claimed.status().ToString());
    return false;
  }
  claimed_ = true;
  return *claimed > config_.job_attempt;
}

Status Trainer::Resume(const std::string& resume) {
  // This attempt claims the store first: an earlier attempt still running elsewhere stops
  // writing to it (attempt_fence.h).
  if (Superseded()) {
    spdlog::warn("{}: a later attempt of this job has claimed it; this attempt {} will not train",
                 config_.checkpoint.dir, config_.job_attempt);
    superseded_ = true;  // the first StopAgreed tells every rank
  }
  if (resume.empty() || resume == "none") return RefuseUsedStore();
  std::string dir;
  CheckpointState state;
  Status mine = Status::Ok();  // this rank's failure to load, voted on below
  bool from_init = false;      // rank 0 chose checkpoint.init_from (its store holds none)
  if (resume == "auto") {
    if (config_.checkpoint.dir.empty()) {
      return InvalidArgument("--resume auto: checkpoint.dir (or output.dir) is not set");
    }
    // What rank 0 broadcasts: the step it chose, or why it has none.
    constexpr int64_t kFresh = -1, kRank0Failed = -2, kRank0Refused = -3;
    int64_t step = kFresh;
    if (rank() == 0) {
      auto point = FindLatestGood(config_.checkpoint.dir, &config_.model);
      const std::string& init = config_.checkpoint.init_from;
      if (!point.ok() && point.status().code() == StatusCode::kNotFound && !init.empty()) {
        // Nothing of its own yet: this run goes on from another's checkpoint.
        spdlog::info("resume auto: no checkpoint in {}: continuing {} (checkpoint.init_from)",
                     config_.checkpoint.dir, init);
        auto loaded = LoadCheckpoint(init, &config_.model, InitUse());
        if (loaded.ok()) {
          point = ResumePoint{std::move(loaded).value(), init, {}};
          from_init = true;
        } else {
          point = loaded.status().WithContext("checkpoint.init_from " + init);
          // Intact but another model: the job's model is what must change (not a resume).
          if (point.status().code() == StatusCode::kFailedPrecondition) {
            point = InvalidArgument(
                point.status().message() +
                (InitUse() == CheckpointUse::kWeights
                     ? "; the model must have its tensor shapes (every field but max_seq_len, "
                       "rope_theta and norm_eps the same)"
                     : "; the model config must be the same (init_weights_only takes the "
                       "weights of a model that differs only in max_seq_len, rope_theta or "
                       "norm_eps)"));
          }
        }
      }
      if (point.ok()) {
        for (const auto& w : point->warnings) {
          spdlog::warn("resume: {}", w);
          Emit({{"event", "checkpoint_skipped"}, {"message", w}});
        }
        dir = point->dir;
        mine = CheckContinues(std::move(point->state), &state);
      } else if (point.status().code() != StatusCode::kNotFound) {
        mine = CheckContinues(point.status(), &state);
      }
      if (!mine.ok()) {
        step = mine.code() == StatusCode::kInvalidArgument ? kRank0Refused : kRank0Failed;
      } else if (!dir.empty()) {
        step = state.step;
      }
    }
    auto agreed = BroadcastFromRank0(step);
    if (!agreed.ok()) return agreed.status().WithContext("resume auto: agreeing on the step");
    step = *agreed;
    auto init_agreed = BroadcastFromRank0(from_init ? 1 : 0);
    if (!init_agreed.ok()) return init_agreed.status().WithContext("resume auto: agreeing on it");
    from_init = *init_agreed != 0;
    if (step == kFresh) {
      if (rank() == 0) {
        spdlog::info("resume auto: no checkpoint in {}: starting fresh", config_.checkpoint.dir);
      }
      return Status::Ok();
    }
    if (rank() != 0 && step == kRank0Refused) {
      mine = InvalidArgument(
          "resume auto: rank 0's newest checkpoint cannot be continued with this config (its "
          "log says why)");
    } else if (rank() != 0 && step == kRank0Failed) {
      mine =
          FailedPrecondition("resume auto: rank 0 found no usable checkpoint (its log says why)");
    } else if (rank() != 0) {
      dir = from_init ? config_.checkpoint.init_from
                      : config_.checkpoint.dir + "/" + StepDirName(step);
      auto loaded =
          LoadCheckpoint(dir, &config_.model, from_init ? InitUse() : CheckpointUse::kResume);
      if (loaded.ok() && loaded->step != step) {
        mine = FailedPrecondition("resume auto: rank " + std::to_string(rank()) + ": " + dir +
                                  " holds step " + std::to_string(loaded->step) +
                                  ", not rank 0's step " + std::to_string(step));
      } else {
        mine = CheckContinues(std::move(loaded), &state)
                   .WithContext("resume auto: rank " + std::to_string(rank()) +
                                " loading rank 0's choice, step " + std::to_string(step));
      }
    }
  } else {
    dir = resume;
    // A checkpoint of this store (going back to an earlier step) may be resumed into it; one
    // of another store only into an empty one.
    // Rank 0 decides, so that every rank takes the collective below or none does.
    constexpr int64_t kForeign = 0, kOwn = 1, kAStore = 2;
    int64_t where = kForeign;
    if (rank() == 0) {
      std::string path = resume;
      while (path.size() > 1 && path.back() == '/') path.pop_back();
      const std::string parent = std::filesystem::path(path).parent_path().string();
      std::error_code ec;
      if (std::filesystem::exists(path + "/latest", ec)) {
        where = kAStore;
      } else if (!config_.checkpoint.dir.empty() &&
                 SameFile(parent.empty() ? "." : parent, config_.checkpoint.dir)) {
        where = kOwn;
      }
    }
    DYT_ASSIGN_OR_RETURN(where, BroadcastFromRank0(where));
    if (where == kAStore) {
      return InvalidArgument("--resume " + resume +
                             ": is a checkpoint store; --resume takes one of its step-XXXXXXXX "
                             "directories, and --resume auto continues checkpoint.dir's latest");
    }
    if (where == kForeign) DYT_RETURN_IF_ERROR(RefuseUsedStore(resume));
    mine = CheckContinues(LoadCheckpoint(resume, &config_.model), &state);
  }
  // Everyone restores (a collective) or nobody does.
  DYT_ASSIGN_OR_RETURN(const double failed, SumOverRanks(mine.ok() ? 0.0 : 1.0));
  if (!mine.ok()) return mine;
  if (failed > 0) {
    return FailedPrecondition("resume: " + std::to_string(int(failed)) + " of " +
                              std::to_string(world_size()) + " ranks could not load " + dir +
                              " (their logs say why); no rank resumed");
  }
  if (from_init && InitUse() == CheckpointUse::kWeights) {
    // The weights alone: step 0, zero moments, the schedule and the data from their start.
    const size_t n = state.params.size();
    DYT_RETURN_IF_ERROR(
        backend_->ImportState(HostTrainState{std::move(state.params), std::vector<float>(n, 0.0f),
                                             std::vector<float>(n, 0.0f), /*adam_step=*/0}));
    if (rank() == 0) {
      spdlog::info(
          "took the weights of {} (step {}); training starts at step 0 with fresh "
          "optimizer state (checkpoint.init_weights_only)",
          dir, state.step);
    }
    Emit({{"event", "initialized"}, {"from_step", state.step}, {"dir", dir}});
    return Status::Ok();
  }
  DYT_RETURN_IF_ERROR(Restore(state));
  if (rank() == 0) spdlog::info("resumed from {} at step {}", dir, step());
  Emit({{"event", "resumed"}, {"step", step()}, {"dir", dir}});
  return Status::Ok();
}

}  // namespace dyt
