#include "services/worker/event_parser.h"

#include <limits>
#include <nlohmann/json.hpp>

namespace dyt::worker {

namespace {

using nlohmann::json;

double Number(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

int64_t Integer(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

// A number; NaN when the key is present but null (JSON has no NaN: nlohmann writes it as null).
double NumberOrNaN(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it != j.end() && it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  return Number(j, key);
}

std::string Text(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

StatusOr<ParsedEvent> ParseEventLine(std::string_view line) {
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument("event line: not a JSON object: " + std::string(line.substr(0, 200)));
  }
  const auto name = j.find("event");
  if (name == j.end() || !name->is_string()) {
    return InvalidArgument("event line: no \"event\" string: " + std::string(line.substr(0, 200)));
  }
  ParsedEvent e;
  e.name = name->get<std::string>();
  if (e.name == "start") {
    e.kind = ParsedEvent::Kind::kStart;
    e.model.params = Integer(j, "params");
    if (const auto m = j.find("model"); m != j.end() && m->is_object()) {
      e.model.vocab_size = Integer(*m, "vocab_size");
      e.model.dim = Integer(*m, "dim");
      e.model.n_layers = Integer(*m, "n_layers");
      e.model.max_seq_len = Integer(*m, "max_seq_len");
      const auto tie = m->find("tie_embeddings");
      e.model.tie_embeddings = tie != m->end() && tie->is_boolean() && tie->get<bool>();
    }
  } else if (e.name == "step") {
    e.kind = ParsedEvent::Kind::kStep;
    v1::Progress& p = e.progress;
    p.set_step(Integer(j, "step"));
    p.set_steps(Integer(j, "steps"));
    p.set_loss(NumberOrNaN(j, "loss"));
    p.set_lr(Number(j, "lr"));
    p.set_grad_norm(Number(j, "grad_norm"));
    p.set_tokens_per_s(Number(j, "tokens_per_s"));
    p.set_alpha_min(Number(j, "alpha_min"));
    p.set_alpha_mean(Number(j, "alpha_mean"));
    p.set_alpha_max(Number(j, "alpha_max"));
    e.step_seconds = Number(j, "step_seconds");
    e.has_alpha = j.contains("alpha_min") && j.contains("alpha_mean") && j.contains("alpha_max");
  } else if (e.name == "eval") {
    e.kind = ParsedEvent::Kind::kEval;
    e.progress.set_step(Integer(j, "step"));
    e.progress.set_val_loss(NumberOrNaN(j, "val_loss"));
  } else if (e.name == "checkpoint") {
    e.kind = ParsedEvent::Kind::kCheckpoint;
    v1::CheckpointRecord& c = e.checkpoint;
    c.set_step(Integer(j, "step"));
    c.set_path(Text(j, "dir"));
    c.set_loss(Number(j, "loss"));
    c.set_val_loss(Number(j, "val_loss"));  // 0 (null in the event) when no evaluation ran
    int64_t total = 0;
    if (const auto files = j.find("files"); files != j.end() && files->is_array()) {
      for (const json& f : *files) {
        if (!f.is_object()) continue;
        v1::CheckpointFile* file = c.add_files();
        file->set_name(Text(f, "name"));
        file->set_size(Integer(f, "size"));
        file->set_sha256(Text(f, "sha256"));
        total += file->size();
      }
    }
    const int64_t bytes = Integer(j, "bytes");
    c.set_total_bytes(bytes > 0 ? bytes : total);
    e.checkpoint_seconds = Number(j, "seconds");
  } else if (e.name == "error") {
    e.kind = ParsedEvent::Kind::kError;
    e.message = Text(j, "message");
  }
  return e;
}

void ProgressTracker::Merge(const ParsedEvent& event) {
  if (event.kind == ParsedEvent::Kind::kStep) {
    const double val_loss = progress_.val_loss();
    const int64_t steps = progress_.steps();
    progress_ = event.progress;
    progress_.set_val_loss(val_loss);
    if (progress_.steps() == 0) progress_.set_steps(steps);
  } else if (event.kind == ParsedEvent::Kind::kEval) {
    progress_.set_step(event.progress.step());
    progress_.set_val_loss(event.progress.val_loss());
  } else if (event.kind == ParsedEvent::Kind::kCheckpoint &&
             event.checkpoint.step() > progress_.step()) {
    // A checkpoint between logged steps (the one a stopping trainer saves): its step is the
    // furthest the job got, and its loss that step's.
    progress_.set_step(event.checkpoint.step());
    if (event.checkpoint.loss() != 0) progress_.set_loss(event.checkpoint.loss());
  }
}

}  // namespace dyt::worker
