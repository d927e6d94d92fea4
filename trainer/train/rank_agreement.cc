#include "trainer/train/rank_agreement.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "trainer/model/config.h"

namespace dyt {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}
std::string Flag(bool b) { return b ? "true" : "false"; }

std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return text;
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Text travels packed into floats: a broadcast copies bits and does no arithmetic on them.
Status BroadcastText(std::string* text, int root, dist::Communicator* comm) {
  float size[2];
  uint64_t n = text->size();
  std::memcpy(size, &n, sizeof(n));
  DYT_RETURN_IF_ERROR(comm->Broadcast(size, 2, root));
  std::memcpy(&n, size, sizeof(n));
  std::vector<float> words((n + sizeof(float) - 1) / sizeof(float), 0.0f);
  if (comm->rank() == root) std::memcpy(words.data(), text->data(), n);
  if (!words.empty()) DYT_RETURN_IF_ERROR(comm->Broadcast(words.data(), words.size(), root));
  text->assign(reinterpret_cast<const char*>(words.data()), n);
  return Status::Ok();
}

// The field name of a "field: value" line.
std::string Field(const std::string& line) { return line.substr(0, line.find(": ")); }
std::string Value(const std::string& line) {
  const size_t colon = line.find(": ");
  return colon == std::string::npos ? "" : line.substr(colon + 2);
}

// How `mine` differs from rank 0's lines, in words; empty when it does not.
std::string Difference(const std::vector<std::string>& mine,
                       const std::vector<std::string>& theirs) {
  for (size_t i = 0; i < std::max(mine.size(), theirs.size()); ++i) {
    if (i < mine.size() && i < theirs.size() && mine[i] == theirs[i]) continue;
    if (i >= mine.size() || i >= theirs.size() || Field(mine[i]) != Field(theirs[i])) {
      return "its config lists other fields than rank 0's (another dyt-train version?)";
    }
    return Field(mine[i]) + " is " + Value(mine[i]) + " there, " + Value(theirs[i]) + " on rank 0";
  }
  return "";
}

}  // namespace

std::vector<std::string> AgreementLines(const TrainConfig& c, const std::string& tokenizer_id,
                                        uint64_t train_tokens) {
  const TrainSection& t = c.train;
  const OptimSection& o = c.optim;
  const DataConfig& d = c.data.shards;
  std::vector<std::string> lines;
  // One line per model field, so that a difference names it.
  const nlohmann::json model = nlohmann::json::parse(ModelConfigToJson(c.model));
  for (const auto& [key, value] : model.items()) {
    lines.push_back("model." + key + ": " + value.dump());
  }
  const std::vector<std::string> rest = {
      "train.steps: " + std::to_string(t.steps),
      "train.batch_size: " + std::to_string(t.batch_size),
      "train.grad_accum: " + std::to_string(t.grad_accum),
      "train.seq_len: " + std::to_string(t.seq_len),
      "train.seed: " + std::to_string(t.seed),
      "train.log_every: " + std::to_string(t.log_every),
      "train.eval_every: " + std::to_string(t.eval_every),
      "train.eval_batches: " + std::to_string(t.eval_batches),
      "train.zero1: " + Flag(t.zero1),
      std::string("train.device: ") + TrainDeviceName(t.device),
      "train.recompute: " + Flag(t.recompute),
      "train.deterministic: " + Flag(t.deterministic),
      "--stop-at-step: " + std::to_string(t.stop_at_step),
      "optimizer.lr: " + Num(o.schedule.lr),
      "optimizer.min_lr: " + Num(o.schedule.min_lr),
      "optimizer.warmup_steps: " + std::to_string(o.schedule.warmup_steps),
      "optimizer.decay_steps: " + std::to_string(o.schedule.total_steps),
      "optimizer.beta1: " + Num(o.adamw.beta1),
      "optimizer.beta2: " + Num(o.adamw.beta2),
      "optimizer.eps: " + Num(o.adamw.eps),
      "optimizer.weight_decay: " + Num(o.adamw.weight_decay),
      "optimizer.no_decay_norms: " + Flag(o.adamw.no_decay_norms_and_scales),
      "optimizer.grad_clip: " + Num(o.grad_clip),
      "data.synthetic: " + Flag(c.data.synthetic),
      "data.repeat_batch: " + Flag(c.data.repeat_batch),
      "data.format: " + d.format,
      "data.seed: " + std::to_string(d.seed),
      "data.val_fraction: " + Num(d.val_fraction),
      "data.max_val_windows: " + std::to_string(d.max_val_windows),
      "data tokenizer id: " + (tokenizer_id.empty() ? std::string("(none)") : tokenizer_id),
      "data training tokens: " + std::to_string(train_tokens),
      "checkpoint.every_steps: " + std::to_string(c.checkpoint.every_steps),
      "checkpoint.every_minutes: " + Num(c.checkpoint.every_minutes),
      // Set or not (its path may differ between machines, as checkpoint.dir's may; the ranks
      // load the step rank 0 chose and compare it).
      "checkpoint.init_from: " + std::string(c.checkpoint.init_from.empty() ? "unset" : "set"),
      "checkpoint.init_weights_only: " + Flag(c.checkpoint.init_weights_only),
      "job_id: " + c.job_id,
      "job_attempt: " + std::to_string(c.job_attempt),
  };
  lines.insert(lines.end(), rest.begin(), rest.end());
  return lines;
}

Status CheckRanksAgree(const std::vector<std::string>& mine, dist::Communicator* comm) {
  if (comm == nullptr || comm->world_size() == 1) return Status::Ok();
  const int world = comm->world_size(), rank = comm->rank();
  std::string text = Join(mine);
  DYT_RETURN_IF_ERROR(BroadcastText(&text, 0, comm).WithContext("comparing configs across ranks"));
  std::string difference = Difference(mine, Split(text));
  // Which ranks differ: each marks its own slot.
  std::vector<float> differs(size_t(world), 0.0f);
  differs[size_t(rank)] = difference.empty() ? 0.0f : 1.0f;
  DYT_RETURN_IF_ERROR(comm->AllReduce(differs.data(), differs.size(), dist::ReduceOp::kSum)
                          .WithContext("comparing configs across ranks"));
  int first = -1, count = 0;
  for (int r = 0; r < world; ++r) {
    if (differs[size_t(r)] > 0) {
      if (first < 0) first = r;
      ++count;
    }
  }
  if (first < 0) return Status::Ok();
  // The first rank that differs tells every rank how, so each log (rank 0's too) says it.
  DYT_RETURN_IF_ERROR(
      BroadcastText(&difference, first, comm).WithContext("comparing configs across ranks"));
  return InvalidArgument("rank " + std::to_string(first) +
                         " was started with another config than rank 0: " + difference + " (" +
                         std::to_string(count) + " of " + std::to_string(world) +
                         " ranks differ from rank 0; every rank of a run needs the same config)");
}

}  // namespace dyt
