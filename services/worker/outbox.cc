#include "services/worker/outbox.h"

#include <google/protobuf/descriptor.h>

#include "common/utf8.h"

namespace dyt::worker {
namespace {

// Makes every string field of `message` (and of the messages in it) valid UTF-8, which proto3
// requires: a trainer's output, error text or file names can hold any bytes, and one invalid
// field would make the whole message unsendable.
void MakeStringsUtf8(google::protobuf::Message* message) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = message->GetDescriptor();
  const google::protobuf::Reflection* r = message->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int k = 0; k < r->FieldSize(*message, f); ++k) {
          std::string scratch;
          const std::string& value = r->GetRepeatedStringReference(*message, f, k, &scratch);
          if (!IsValidUtf8(value)) r->SetRepeatedString(message, f, k, ToValidUtf8(value));
        }
      } else if (r->HasField(*message, f) || !f->has_presence()) {
        std::string scratch;
        const std::string& value = r->GetStringReference(*message, f, &scratch);
        if (!IsValidUtf8(value)) r->SetString(message, f, ToValidUtf8(value));
      }
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_map()) continue;  // none of the worker's messages has a map of free text
      if (f->is_repeated()) {
        for (int k = 0; k < r->FieldSize(*message, f); ++k) {
          MakeStringsUtf8(r->MutableRepeatedMessage(message, f, k));
        }
      } else if (r->HasField(*message, f)) {
        MakeStringsUtf8(r->MutableMessage(message, f));
      }
    }
  }
}

}  // namespace

void Outbox::QueueBatchesLocked(bool all) {
  const Clock::time_point now = Clock::now();
  for (auto it = batches_.begin(); it != batches_.end();) {
    Batch& b = it->second;
    if (all || b.batch.lines_size() >= static_cast<int>(kBatchLines) ||
        now - b.first >= kBatchDelay) {
      v1::WorkerMessage m;
      *m.mutable_logs() = std::move(b.batch);
      queue_.push_back(std::move(m));
      it = batches_.erase(it);
    } else {
      ++it;
    }
  }
}

void Outbox::Push(v1::WorkerMessage message) {
  MakeStringsUtf8(&message);
  {
    std::lock_guard<std::mutex> lock(mu_);
    QueueBatchesLocked(/*all=*/true);
    queue_.push_back(std::move(message));
  }
  cv_.notify_all();
}

void Outbox::AddLogLine(const std::string& job_id, int attempt, int rank, std::string line) {
  if (!IsValidUtf8(line)) line = ToValidUtf8(line);
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Key key(job_id, attempt, rank);
    const int64_t number = ++lines_seen_[key];  // a dropped line keeps its number
    if (log_lines_ >= max_log_lines_) {
      ++dropped_;
      // The key's open batch ends before the gap: a batch's lines are numbered consecutively.
      if (auto open = batches_.find(key); open != batches_.end()) {
        v1::WorkerMessage m;
        *m.mutable_logs() = std::move(open->second.batch);
        queue_.push_back(std::move(m));
        batches_.erase(open);
      }
      return;
    }
    ++log_lines_;
    Batch& b = batches_[key];
    if (b.batch.lines_size() == 0) {
      b.batch.set_job_id(job_id);
      b.batch.set_attempt(attempt);
      b.batch.set_rank(rank);
      b.batch.set_first_line(number);
      b.first = Clock::now();
    }
    b.batch.add_lines(std::move(line));
    notify = b.batch.lines_size() >= static_cast<int>(kBatchLines);
  }
  if (notify) cv_.notify_all();
}

std::vector<v1::WorkerMessage> Outbox::Take(bool flush) {
  std::lock_guard<std::mutex> lock(mu_);
  QueueBatchesLocked(flush);
  std::vector<v1::WorkerMessage> out(std::make_move_iterator(queue_.begin()),
                                     std::make_move_iterator(queue_.end()));
  queue_.clear();
  for (const v1::WorkerMessage& m : out) {
    if (m.has_logs()) log_lines_ -= std::min<size_t>(log_lines_, m.logs().lines_size());
  }
  return out;
}

void Outbox::Requeue(std::vector<v1::WorkerMessage> messages) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->has_logs()) log_lines_ += it->logs().lines_size();
    queue_.push_front(std::move(*it));
  }
}

void Outbox::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!queue_.empty()) return;
  // Wake for a pending batch coming due, too.
  Clock::time_point until = Clock::now() + timeout;
  for (const auto& [key, b] : batches_) until = std::min(until, b.first + kBatchDelay);
  cv_.wait_until(lock, until, [&] { return !queue_.empty(); });
}

bool Outbox::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && batches_.empty();
}

size_t Outbox::dropped_log_lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

std::vector<v1::RunningRank> Outbox::PendingExits() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::RunningRank> out;
  for (const v1::WorkerMessage& m : queue_) {
    if (!m.has_update() || m.update().kind() != v1::RankUpdate::EXITED) continue;
    v1::RunningRank r;
    r.set_job_id(m.update().job_id());
    r.set_attempt(m.update().attempt());
    r.set_rank(m.update().rank());
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace dyt::worker
