#include "scheduler/placement.h"

#include <algorithm>

namespace dyt {
namespace {

std::string RequestText(const GangRequest& request) {
  return "asks " + std::to_string(request.ranks) + (request.ranks == 1 ? " rank" : " ranks") +
         " x " + std::to_string(request.slots_per_rank) + " " + request.kind +
         (request.slots_per_rank == 1 ? " slot" : " slots");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClusterView

void ClusterView::Unindex(const std::string& id, const Worker& w) {
  allocated_[w.kind] -= w.slots - w.free;
  if (!w.schedulable) return;
  total_[w.kind] -= w.slots;
  free_[w.kind] -= w.free;
  auto kind_it = by_free_.find(w.kind);
  if (kind_it == by_free_.end()) return;
  auto free_it = kind_it->second.find(w.free);
  if (free_it == kind_it->second.end()) return;
  free_it->second.erase(id);
  if (free_it->second.empty()) kind_it->second.erase(free_it);
}

void ClusterView::Index(const std::string& id, const Worker& w) {
  allocated_[w.kind] += w.slots - w.free;
  if (!w.schedulable) return;
  total_[w.kind] += w.slots;
  free_[w.kind] += w.free;
  by_free_[w.kind][w.free].insert(id);
}

Status ClusterView::AddWorker(const std::string& worker_id, const std::string& kind, int slots) {
  if (worker_id.empty()) return InvalidArgument("worker_id: must not be empty");
  if (kind.empty()) return InvalidArgument("kind: must not be empty");
  if (slots < 0) return InvalidArgument("slots: must be >= 0, got " + std::to_string(slots));
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    Worker w;
    w.kind = kind;
    w.slots = slots;
    w.slot_owner.assign(slots, "");
    w.free = slots;
    Index(worker_id, w);
    workers_.emplace(worker_id, std::move(w));
    return Status::Ok();
  }
  Worker& w = it->second;
  const bool in_use = w.free < w.slots;
  if (kind != w.kind && in_use) {
    return InvalidArgument("worker " + worker_id + ": kind cannot change from " + w.kind + " to " +
                           kind + " while " + std::to_string(w.slots - w.free) +
                           " slots are in use");
  }
  for (int s = slots; s < w.slots; ++s) {
    if (!w.slot_owner[s].empty()) {
      return InvalidArgument("worker " + worker_id + ": slots cannot shrink to " +
                             std::to_string(slots) + " while slot " + std::to_string(s) +
                             " is in use by " + w.slot_owner[s]);
    }
  }
  Unindex(worker_id, w);
  w.kind = kind;
  w.free += slots - w.slots;
  w.slots = slots;
  w.slot_owner.resize(slots);
  Index(worker_id, w);
  return Status::Ok();
}

void ClusterView::RemoveWorker(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  Unindex(worker_id, it->second);
  for (const std::string& owner : it->second.slot_owner) {
    if (owner.empty()) continue;
    auto owned = owner_workers_.find(owner);
    if (owned == owner_workers_.end()) continue;
    owned->second.erase(worker_id);
    if (owned->second.empty()) owner_workers_.erase(owned);
  }
  workers_.erase(it);
}

void ClusterView::SetSchedulable(const std::string& worker_id, bool schedulable) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.schedulable == schedulable) return;
  Unindex(worker_id, it->second);
  it->second.schedulable = schedulable;
  Index(worker_id, it->second);
}

bool ClusterView::HasWorker(const std::string& worker_id) const {
  return workers_.count(worker_id) > 0;
}

std::optional<Placement> ClusterView::Place(const GangRequest& request) const {
  if (request.ranks < 1 || request.slots_per_rank < 1) return std::nullopt;
  auto kind_it = by_free_.find(request.kind);
  if (kind_it == by_free_.end() || kind_it->second.empty()) return std::nullopt;
  const std::map<int, std::set<std::string>>& by_free = kind_it->second;
  const int spr = request.slots_per_rank;
  const int64_t need = static_cast<int64_t>(request.ranks) * spr;
  if (need > free_.at(request.kind)) return std::nullopt;  // cheap early out for a full cluster

  // (worker id, ranks it takes), in rank order.
  std::vector<std::pair<const std::string*, int>> chosen;
  if (need <= by_free.rbegin()->first) {
    // One worker: the one with the fewest free slots that still fits the whole job.
    auto fit = by_free.lower_bound(static_cast<int>(need));
    chosen.emplace_back(&*fit->second.begin(), request.ranks);
  } else {
    // Fewest workers: take the workers with the most free slots until the ranks fit; then the
    // last group of ranks moves to the tightest worker (not already chosen) that holds it.
    // Workers of equal capacity (free / slots_per_rank) are taken fewest free slots first.
    int placed = 0;
    for (auto it = by_free.rbegin(); it != by_free.rend() && placed < request.ranks;) {
      const int cap = it->first / spr;
      if (cap == 0) break;
      const auto group_begin = by_free.lower_bound(cap * spr);
      for (auto g = group_begin; g != it.base() && placed < request.ranks; ++g) {
        for (const std::string& id : g->second) {
          const int take = std::min(cap, request.ranks - placed);
          chosen.emplace_back(&id, take);
          placed += take;
          if (placed == request.ranks) break;
        }
      }
      it = std::make_reverse_iterator(group_begin);
    }
    if (placed < request.ranks) return std::nullopt;
    const int last_ranks = chosen.back().second;
    for (auto it = by_free.lower_bound(last_ranks * spr); it != by_free.end(); ++it) {
      const std::string* pick = nullptr;
      for (const std::string& id : it->second) {
        bool taken = false;
        for (size_t i = 0; i + 1 < chosen.size() && !taken; ++i) taken = *chosen[i].first == id;
        if (!taken) {
          pick = &id;
          break;
        }
      }
      if (pick != nullptr) {
        chosen.back().first = pick;
        break;
      }
    }
  }

  Placement placement;
  placement.reserve(request.ranks);
  int rank = 0;
  for (const auto& [id, ranks] : chosen) {
    const Worker& w = workers_.at(*id);
    int slot = 0;
    for (int r = 0; r < ranks; ++r) {
      v1::RankPlacement& rp = placement.emplace_back();
      rp.set_rank(rank++);
      rp.set_worker_id(*id);
      for (int taken = 0; taken < spr; ++slot) {
        if (w.slot_owner[slot].empty()) {
          rp.add_slots(slot);
          ++taken;
        }
      }
    }
  }
  return placement;
}

Status ClusterView::Allocate(const std::string& owner, const Placement& placement) {
  if (owner.empty()) return InvalidArgument("owner: must not be empty");
  // Validate everything first so that a conflict changes nothing.
  std::set<std::pair<std::string, int>> claimed;
  for (const v1::RankPlacement& rp : placement) {
    auto it = workers_.find(rp.worker_id());
    if (it == workers_.end()) {
      return FailedPrecondition("rank " + std::to_string(rp.rank()) + ": worker " + rp.worker_id() +
                                " is unknown");
    }
    const Worker& w = it->second;
    for (int slot : rp.slots()) {
      const std::string where = "worker " + rp.worker_id() + " slot " + std::to_string(slot);
      if (slot < 0 || slot >= w.slots) {
        return FailedPrecondition(where + ": out of range (worker has " + std::to_string(w.slots) +
                                  " slots)");
      }
      if (!w.slot_owner[slot].empty()) {
        return FailedPrecondition(where + ": already in use by " + w.slot_owner[slot]);
      }
      if (!claimed.emplace(rp.worker_id(), slot).second) {
        return FailedPrecondition(where + ": listed twice in the placement");
      }
    }
  }
  for (const v1::RankPlacement& rp : placement) {
    if (rp.slots().empty()) continue;
    Worker& w = workers_.at(rp.worker_id());
    Unindex(rp.worker_id(), w);
    for (int slot : rp.slots()) w.slot_owner[slot] = owner;
    w.free -= rp.slots_size();
    Index(rp.worker_id(), w);
    owner_workers_[owner].insert(rp.worker_id());
  }
  return Status::Ok();
}

int ClusterView::FreeOn(const std::string& owner, const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return 0;
  Worker& w = it->second;
  Unindex(worker_id, w);
  int freed = 0;
  for (std::string& slot_owner : w.slot_owner) {
    if (slot_owner == owner) {
      slot_owner.clear();
      ++freed;
    }
  }
  w.free += freed;
  Index(worker_id, w);
  return freed;
}

int ClusterView::Release(const std::string& owner) {
  auto owned = owner_workers_.find(owner);
  if (owned == owner_workers_.end()) return 0;
  int freed = 0;
  for (const std::string& worker_id : owned->second) freed += FreeOn(owner, worker_id);
  owner_workers_.erase(owned);
  return freed;
}

int ClusterView::ReleaseOnWorker(const std::string& owner, const std::string& worker_id) {
  auto owned = owner_workers_.find(owner);
  if (owned == owner_workers_.end() || owned->second.erase(worker_id) == 0) return 0;
  if (owned->second.empty()) owner_workers_.erase(owned);
  return FreeOn(owner, worker_id);
}

bool ClusterView::CouldEverFit(const GangRequest& request, std::string* why) const {
  auto fail = [&](const std::string& reason) {
    if (why != nullptr) *why = RequestText(request) + "; " + reason;
    return false;
  };
  if (request.ranks < 1) return fail("ranks must be >= 1");
  if (request.slots_per_rank < 1) return fail("slots per rank must be >= 1");
  int64_t ranks_fit = 0;
  int largest = -1;
  for (const auto& [id, w] : workers_) {
    if (!w.schedulable || w.kind != request.kind) continue;
    ranks_fit += w.slots / request.slots_per_rank;
    largest = std::max(largest, w.slots);
  }
  if (largest < 0) {
    return fail("there are no schedulable " + request.kind +
                " workers (connected, not drained nor shutting down)");
  }
  if (ranks_fit >= request.ranks) return true;
  return fail("the schedulable " + request.kind + " workers fit at most " +
              std::to_string(ranks_fit) + (ranks_fit == 1 ? " such rank" : " such ranks") +
              " (largest worker: " + std::to_string(largest) + " slots)");
}

int ClusterView::total_slots(const std::string& kind) const {
  auto it = total_.find(kind);
  return it == total_.end() ? 0 : it->second;
}

int ClusterView::free_slots_of(const std::string& kind) const {
  auto it = free_.find(kind);
  return it == free_.end() ? 0 : static_cast<int>(it->second);
}

int ClusterView::allocated_slots(const std::string& kind) const {
  auto it = allocated_.find(kind);
  return it == allocated_.end() ? 0 : it->second;
}

int ClusterView::free_slots(const std::string& worker_id) const {
  auto it = workers_.find(worker_id);
  return it == workers_.end() ? 0 : it->second.free;
}

std::vector<std::string> ClusterView::OwnersOn(const std::string& worker_id) const {
  std::vector<std::string> owners;
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return owners;
  std::set<std::string> unique;
  for (const std::string& owner : it->second.slot_owner) {
    if (!owner.empty()) unique.insert(owner);
  }
  return {unique.begin(), unique.end()};
}

// ---------------------------------------------------------------------------------------------
// Preemption

std::optional<std::vector<std::string>> ChoosePreemptionVictims(
    const ClusterView& view, const GangRequest& request, int priority,
    const std::vector<RunningJob>& running) {
  ClusterView scratch = view;
  if (scratch.Place(request).has_value()) return std::vector<std::string>{};

  std::vector<const RunningJob*> candidates;
  for (const RunningJob& job : running) {
    if (job.priority < priority) candidates.push_back(&job);
  }
  std::sort(candidates.begin(), candidates.end(), [](const RunningJob* a, const RunningJob* b) {
    return std::tie(a->priority, b->order, a->owner) < std::tie(b->priority, a->order, b->owner);
  });

  std::vector<const RunningJob*> victims;
  bool fits = false;
  for (const RunningJob* job : candidates) {
    scratch.Release(job->owner);
    victims.push_back(job);
    if (scratch.Place(request).has_value()) {
      fits = true;
      break;
    }
  }
  if (!fits) return std::nullopt;

  // Drop the victims that are not needed after all, trying the last chosen (the ones we least
  // want to preempt) first. Fitting only gets easier with more free slots, so one pass leaves
  // a set from which no victim can be dropped.
  std::vector<bool> keep(victims.size(), true);
  for (size_t i = victims.size(); i-- > 0;) {
    const RunningJob* job = victims[i];
    if (!scratch.Allocate(job->owner, job->placement).ok()) continue;  // cannot restore: needed
    if (scratch.Place(request).has_value()) {
      keep[i] = false;
    } else {
      scratch.Release(job->owner);
    }
  }
  std::vector<std::string> owners;
  for (size_t i = 0; i < victims.size(); ++i) {
    if (keep[i]) owners.push_back(victims[i]->owner);
  }
  return owners;
}

// ---------------------------------------------------------------------------------------------
// JobQueue

void JobQueue::Push(const Entry& entry) {
  Remove(entry.job_id);
  const Key key{-static_cast<int64_t>(entry.priority), entry.order, entry.job_id};
  order_.insert(key);
  by_id_.emplace(entry.job_id, key);
}

bool JobQueue::Remove(const std::string& job_id) {
  auto it = by_id_.find(job_id);
  if (it == by_id_.end()) return false;
  order_.erase(it->second);
  by_id_.erase(it);
  return true;
}

bool JobQueue::Contains(const std::string& job_id) const { return by_id_.count(job_id) > 0; }

std::vector<JobQueue::Entry> JobQueue::Ordered() const {
  std::vector<Entry> entries;
  entries.reserve(order_.size());
  ForEach([&](const Entry& entry) {
    entries.push_back(entry);
    return true;
  });
  return entries;
}

}  // namespace dyt
