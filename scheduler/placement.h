// Placement: which worker slots a job's ranks get. Pure, in-memory, single-threaded (the
// Scheduler calls it under its lock); no I/O, no clocks, so it is unit-tested and benchmarked
// directly (tests/scheduler/placement_test.cc, bench/scheduler/placement_bench.cc).
//
// Rules (docs/scheduler.md, "Scheduling"):
//   * Gang: all ranks of a job are placed at once or none is. A rank needs slots_per_rank
//     slots of the job's kind on ONE worker; a worker may take several ranks of a job.
//   * Best fit: a job goes on as few workers as possible, and among those on the workers it
//     leaves with the fewest free slots (keeps big holes for big jobs). Ranks are numbered
//     consecutively per worker (worker A gets ranks 0..k-1, B gets k..), so a worker's ranks
//     are contiguous.
//   * Only workers that are schedulable (connected, not draining) of the job's kind are used.
//   * Slot indices handed out are the lowest free ones of a worker, in increasing order.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "dyt/v1/job.pb.h"

namespace dyt {

// What a job asks for.
struct GangRequest {
  int ranks = 1;
  int slots_per_rank = 1;
  std::string kind = "cpu";  // "cpu" | "gpu"
};

// One rank's place: worker and slot indices.
using Placement = std::vector<v1::RankPlacement>;  // one entry per rank, rank order

// The cluster's slots: per worker, its kind, slot count, which slots are in use and whether it
// takes new work. Kept indexed by free-slot count per kind so that placing one job costs
// O(log workers + workers used), not O(workers): 10,000 jobs onto 1,000 workers in well under
// a second (the benchmark).
class ClusterView {
 public:
  // Adds a worker with all slots free, or, when `worker_id` exists, updates its kind and slot
  // count keeping the allocations it holds (INVALID_ARGUMENT when the new count is below a
  // slot in use, or the kind changes while slots are in use). slots >= 0.
  Status AddWorker(const std::string& worker_id, const std::string& kind, int slots);
  // Removes the worker and forgets its allocations. No-op when absent.
  void RemoveWorker(const std::string& worker_id);
  // A non-schedulable worker keeps its allocations but gets no new ones.
  void SetSchedulable(const std::string& worker_id, bool schedulable);
  bool HasWorker(const std::string& worker_id) const;

  // A placement for `request` on the free slots now, or nullopt when it does not fit. Does not
  // change the view.
  std::optional<Placement> Place(const GangRequest& request) const;
  // Marks the slots of `placement` used by `owner` (an opaque key, e.g. "job-1/3" for job
  // and attempt). FAILED_PRECONDITION naming the worker and slot when a slot is already in
  // use, the worker is unknown or the slot index is out of range; then nothing changes.
  Status Allocate(const std::string& owner, const Placement& placement);
  // Frees every slot `owner` holds (on every worker). Returns how many slots were freed.
  int Release(const std::string& owner);
  // Frees the slots `owner` holds on one worker only.
  int ReleaseOnWorker(const std::string& owner, const std::string& worker_id);

  // Could `request` ever fit if every schedulable worker of its kind were idle? When not,
  // `why` (if given) gets a sentence for the user: "asks 2 ranks x 4 cpu slots; the registered
  // cpu workers fit at most 1 such rank (largest worker: 3 slots)".
  bool CouldEverFit(const GangRequest& request, std::string* why = nullptr) const;

  int total_slots(const std::string& kind) const;      // schedulable workers only
  int allocated_slots(const std::string& kind) const;  // all workers
  int free_slots(const std::string& worker_id) const;  // 0 when unknown
  int worker_count() const { return static_cast<int>(workers_.size()); }
  // The owners holding slots on a worker.
  std::vector<std::string> OwnersOn(const std::string& worker_id) const;

 private:
  struct Worker {
    std::string kind;
    int slots = 0;
    bool schedulable = true;
    std::vector<std::string> slot_owner;  // "" = free
    int free = 0;
  };
  void Unindex(const std::string& id, const Worker& w);
  void Index(const std::string& id, const Worker& w);

  std::unordered_map<std::string, Worker> workers_;
  // kind -> free count -> worker ids with that many free slots (schedulable workers only).
  std::map<std::string, std::map<int, std::set<std::string>>> by_free_;
};

// A running job as preemption sees it.
struct RunningJob {
  std::string owner;  // the ClusterView owner key of its allocation
  int priority = 0;
  uint64_t order = 0;  // submission order (job number): larger = newer
  Placement placement;
};

// Which running jobs to preempt so that `request` (of priority `priority`) fits, or nullopt
// when preempting every job of strictly lower priority would still not make it fit. Victims
// have strictly lower priority; the lowest priority goes first, and within a priority the
// newest (least work lost); then victims not needed after all are dropped again (newest-first
// choice can overshoot), so the set is minimal in that order. `view` is not changed.
std::optional<std::vector<std::string>> ChoosePreemptionVictims(
    const ClusterView& view, const GangRequest& request, int priority,
    const std::vector<RunningJob>& running);

// The queue of jobs waiting for slots: highest priority first, FIFO (by submission order)
// within a priority.
class JobQueue {
 public:
  struct Entry {
    std::string job_id;
    int priority = 0;
    uint64_t order = 0;  // submission order; unique per job
  };
  // Adds or (same job_id) repositions the job. A requeued job keeps its original order, so it
  // goes back ahead of jobs submitted after it.
  void Push(const Entry& entry);
  bool Remove(const std::string& job_id);  // false when absent
  bool Contains(const std::string& job_id) const;
  size_t size() const { return by_id_.size(); }
  // Entries in scheduling order.
  std::vector<Entry> Ordered() const;
  // Visits in scheduling order until `visit` returns false.
  template <typename F>
  void ForEach(F&& visit) const {
    for (const auto& [key, id] : order_) {
      if (!visit(Entry{id, -key.first, key.second})) return;
    }
  }

 private:
  // (-priority, order) -> job id: ascending iteration is the scheduling order.
  std::map<std::pair<int, uint64_t>, std::string> order_;
  std::unordered_map<std::string, std::pair<int, uint64_t>> by_id_;
};

}  // namespace dyt
