// Placement: which worker slots a job's ranks get. Pure, in-memory, single-threaded (the
// Scheduler calls it under its lock); no I/O, no clocks, so it is unit-tested and benchmarked
// directly (tests/scheduler/placement_test.cc, bench/scheduler/placement_bench.cc).
//
// Rules (docs/scheduler.md, "Scheduling"):
//   * Gang: all ranks of a job are placed at once or none is. A rank needs slots_per_rank
//     slots of the job's kind on ONE worker; a worker may take several ranks of a job.
//   * Best fit: a job goes on as few workers as possible, and among those on the workers it
//     leaves with the fewest free slots (keeps big holes for big jobs). A job that fits on one
//     worker goes on the one with the fewest free slots that holds it. A job that needs several
//     fills the workers that hold the most ranks (that is what makes the count minimal; among
//     equal ones, those with the fewest free slots), and its last group of ranks goes on the
//     tightest other worker that holds that group (a heuristic: the set of k workers with the
//     fewest free slots in total is a subset-sum problem). Ties between equally free workers go to
//     the smallest worker id. Ranks are numbered consecutively per worker (worker A gets ranks
//     0..k-1, B gets k..), so a worker's ranks are contiguous.
//   * Only workers that are schedulable (connected, not draining) of the job's kind are used.
//   * Slot indices handed out are the lowest free ones of a worker, in increasing order.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
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

  // A placement for `request` on the free slots now, or nullopt when it does not fit (or
  // ranks < 1 or slots_per_rank < 1). It finds one whenever one exists. Does not change the
  // view.
  std::optional<Placement> Place(const GangRequest& request) const;
  // Marks the slots of `placement` used by `owner` (an opaque key, e.g. "job-1/3" for job
  // and attempt). FAILED_PRECONDITION naming the worker and slot when a slot is already in
  // use, the worker is unknown, the slot index is out of range or listed twice; then nothing
  // changes. INVALID_ARGUMENT for an empty owner. Non-schedulable workers may be allocated
  // explicitly (e.g. re-adopting running jobs after a restart).
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
  int free_slots_of(const std::string& kind) const;    // schedulable workers only
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
  // Every change to a worker is Unindex(old state), change, Index(new state); these keep
  // by_free_, total_ and allocated_ in step.
  void Unindex(const std::string& id, const Worker& w);
  void Index(const std::string& id, const Worker& w);
  // Frees `owner`'s slots on one worker (owner_workers_ is the caller's business).
  int FreeOn(const std::string& owner, const std::string& worker_id);

  std::unordered_map<std::string, Worker> workers_;
  // kind -> free count -> worker ids with that many free slots (schedulable workers only).
  std::map<std::string, std::map<int, std::set<std::string>>> by_free_;
  std::map<std::string, int> total_;      // kind -> slots of schedulable workers
  std::map<std::string, int64_t> free_;   // kind -> free slots of schedulable workers
  std::map<std::string, int> allocated_;  // kind -> slots in use on all workers
  // owner -> the workers where it holds slots, so Release costs O(its workers).
  std::unordered_map<std::string, std::set<std::string>> owner_workers_;
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
// choice can overshoot), so the set is minimal in that order: no victim can be left out. An
// empty vector when the request fits without preempting anything. `view` is not changed.
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
  // Adds or (same job_id) repositions the job at entry's priority and order. A requeued job is
  // pushed with its original order, so it goes back ahead of jobs submitted after it. Entries
  // with equal priority and order (should not happen) are ordered by job id.
  void Push(const Entry& entry);
  bool Remove(const std::string& job_id);  // false when absent
  bool Contains(const std::string& job_id) const;
  size_t size() const { return by_id_.size(); }
  // Entries in scheduling order.
  std::vector<Entry> Ordered() const;
  // Visits in scheduling order until `visit` returns false.
  template <typename F>
  void ForEach(F&& visit) const {
    for (const auto& [neg_priority, order, id] : order_) {
      if (!visit(Entry{id, static_cast<int>(-neg_priority), order})) return;
    }
  }

 private:
  // (-priority, order, job id): ascending iteration is the scheduling order.
  using Key = std::tuple<int64_t, uint64_t, std::string>;
  std::set<Key> order_;
  std::unordered_map<std::string, Key> by_id_;
};

}  // namespace dyt
