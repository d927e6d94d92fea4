// ClusterView placement (gang, best fit, kinds, schedulable), its bookkeeping (Allocate,
// Release, RemoveWorker, AddWorker updates, CouldEverFit) and ChoosePreemptionVictims, on
// hand-built clusters and under randomized operations checked against a brute-force model.
#include "scheduler/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace dyt {
namespace {

// A placement as (worker, slots) per rank, easy to compare.
using Ranks = std::vector<std::pair<std::string, std::vector<int>>>;
Ranks Summary(const Placement& placement) {
  Ranks out;
  for (const v1::RankPlacement& rp : placement) {
    out.emplace_back(rp.worker_id(), std::vector<int>(rp.slots().begin(), rp.slots().end()));
  }
  return out;
}

void CheckRanksNumbered(const Placement& placement) {
  for (size_t i = 0; i < placement.size(); ++i) EXPECT_EQ(placement[i].rank(), int(i));
}

// A placement by hand: rank i on workers[i] with slots[i].
Placement Make(const Ranks& ranks) {
  Placement placement;
  int rank = 0;
  for (const auto& [worker, slots] : ranks) {
    v1::RankPlacement& rp = placement.emplace_back();
    rp.set_rank(rank++);
    rp.set_worker_id(worker);
    for (int s : slots) rp.add_slots(s);
  }
  return placement;
}

ClusterView Cluster(const std::vector<std::pair<std::string, int>>& cpu_workers) {
  ClusterView view;
  for (const auto& [id, slots] : cpu_workers) EXPECT_TRUE(view.AddWorker(id, "cpu", slots).ok());
  return view;
}

TEST(PlacementTest, SingleWorkerGoesToTightestFit) {
  ClusterView view = Cluster({{"a", 8}, {"b", 4}, {"c", 2}});
  auto p = view.Place({.ranks = 1, .slots_per_rank = 3, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p), (Ranks{{"b", {0, 1, 2}}}));
  p = view.Place({.ranks = 2, .slots_per_rank = 1, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p), (Ranks{{"c", {0}}, {"c", {1}}}));
  CheckRanksNumbered(*p);
  p = view.Place({.ranks = 3, .slots_per_rank = 2, .kind = "cpu"});  // 6 slots: only a
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p), (Ranks{{"a", {0, 1}}, {"a", {2, 3}}, {"a", {4, 5}}}));
}

TEST(PlacementTest, TightestFitCountsCurrentFreeSlotsAndTiesGoToSmallestId) {
  ClusterView view = Cluster({{"w2", 8}, {"w1", 8}, {"w3", 8}});
  ASSERT_TRUE(view.Allocate("x", Make({{"w3", {0, 1, 2, 3, 4}}})).ok());  // w3: 3 free
  auto p = view.Place({.ranks = 1, .slots_per_rank = 2, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p), (Ranks{{"w3", {5, 6}}}));
  p = view.Place({.ranks = 1, .slots_per_rank = 4, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p), (Ranks{{"w1", {0, 1, 2, 3}}}));
}

TEST(PlacementTest, LowestFreeSlotIndicesInIncreasingOrder) {
  ClusterView view = Cluster({{"a", 8}});
  ASSERT_TRUE(view.Allocate("x", Make({{"a", {0, 2, 5}}})).ok());
  auto p = view.Place({.ranks = 2, .slots_per_rank = 2, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p), (Ranks{{"a", {1, 3}}, {"a", {4, 6}}}));
}

TEST(PlacementTest, MultiWorkerUsesFewestWorkersAndContiguousRanks) {
  // 12 ranks: two workers suffice (8 + 4); the 4 go on the tightest worker that holds them.
  ClusterView view = Cluster({{"a", 8}, {"b", 8}, {"c", 2}, {"d", 2}, {"e", 2}, {"f", 5}});
  auto p = view.Place({.ranks = 12, .slots_per_rank = 1, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->size(), 12u);
  CheckRanksNumbered(*p);
  for (int r = 0; r < 8; ++r) EXPECT_EQ((*p)[r].worker_id(), "a") << r;
  for (int r = 8; r < 12; ++r) EXPECT_EQ((*p)[r].worker_id(), "f") << r;
  EXPECT_EQ(Summary(*p)[11], (std::pair<std::string, std::vector<int>>{"f", {3}}));

  // 10 ranks onto 8 + 5 + 2: the last 2 ranks fit exactly on c.
  ClusterView view2 = Cluster({{"a", 8}, {"b", 5}, {"c", 2}});
  p = view2.Place({.ranks = 10, .slots_per_rank = 1, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  std::map<std::string, int> per_worker;
  for (const auto& rp : *p) ++per_worker[rp.worker_id()];
  EXPECT_EQ(per_worker, (std::map<std::string, int>{{"a", 8}, {"c", 2}}));

  // Three workers needed: 3 ranks x 3 slots on workers of 4 free slots (1 rank each).
  ClusterView view3 = Cluster({{"a", 4}, {"b", 4}, {"c", 4}, {"d", 4}});
  p = view3.Place({.ranks = 3, .slots_per_rank = 3, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  std::set<std::string> workers;
  for (const auto& rp : *p) {
    workers.insert(rp.worker_id());
    EXPECT_EQ(rp.slots_size(), 3);
  }
  EXPECT_EQ(workers.size(), 3u);
}

TEST(PlacementTest, MultiWorkerPrefersTighterWorkersOfEqualCapacity) {
  // 4 ranks x 3 slots: a (8 free), b and c (6 free) each hold 2 ranks. b + c use every slot
  // they have; a would be left with 2 stranded slots.
  ClusterView view = Cluster({{"a", 8}, {"b", 6}, {"c", 6}});
  auto p = view.Place({.ranks = 4, .slots_per_rank = 3, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p),
            (Ranks{{"b", {0, 1, 2}}, {"b", {3, 4, 5}}, {"c", {0, 1, 2}}, {"c", {3, 4, 5}}}));
}

TEST(PlacementTest, GangIsAllOrNothing) {
  ClusterView view = Cluster({{"a", 4}, {"b", 3}});
  // 8 slots would fit 7 ranks of 1 but only 3 ranks of 2 (2 on a, 1 on b).
  EXPECT_FALSE(view.Place({.ranks = 8, .slots_per_rank = 1, .kind = "cpu"}).has_value());
  EXPECT_FALSE(view.Place({.ranks = 4, .slots_per_rank = 2, .kind = "cpu"}).has_value());
  EXPECT_TRUE(view.Place({.ranks = 3, .slots_per_rank = 2, .kind = "cpu"}).has_value());
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 5, .kind = "cpu"}).has_value());
  EXPECT_FALSE(view.Place({.ranks = 0, .slots_per_rank = 1, .kind = "cpu"}).has_value());
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 0, .kind = "cpu"}).has_value());
  // Place never changes the view.
  EXPECT_EQ(view.free_slots("a"), 4);
  EXPECT_EQ(view.free_slots("b"), 3);
  EXPECT_EQ(view.allocated_slots("cpu"), 0);
}

TEST(PlacementTest, KindsAreSeparate) {
  ClusterView view;
  ASSERT_TRUE(view.AddWorker("g", "gpu", 8).ok());
  ASSERT_TRUE(view.AddWorker("c", "cpu", 2).ok());
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 4, .kind = "cpu"}).has_value());
  auto p = view.Place({.ranks = 1, .slots_per_rank = 4, .kind = "gpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)[0].worker_id(), "g");
  p = view.Place({.ranks = 2, .slots_per_rank = 1, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)[0].worker_id(), "c");
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 1, .kind = "tpu"}).has_value());
  EXPECT_EQ(view.total_slots("gpu"), 8);
  EXPECT_EQ(view.total_slots("cpu"), 2);
  ASSERT_TRUE(
      view.Allocate("j", *view.Place({.ranks = 1, .slots_per_rank = 3, .kind = "gpu"})).ok());
  EXPECT_EQ(view.allocated_slots("gpu"), 3);
  EXPECT_EQ(view.allocated_slots("cpu"), 0);
}

TEST(PlacementTest, NonSchedulableWorkersGetNoNewWork) {
  ClusterView view = Cluster({{"a", 4}, {"b", 8}});
  ASSERT_TRUE(view.Allocate("x", Make({{"b", {0}}})).ok());
  view.SetSchedulable("a", false);
  EXPECT_EQ(view.total_slots("cpu"), 8);
  EXPECT_EQ(view.allocated_slots("cpu"), 1);
  auto p = view.Place({.ranks = 1, .slots_per_rank = 2, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)[0].worker_id(), "b");  // a would be the tighter fit
  view.SetSchedulable("b", false);
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 1, .kind = "cpu"}).has_value());
  EXPECT_EQ(view.allocated_slots("cpu"), 1);  // b keeps its allocation
  EXPECT_EQ(view.OwnersOn("b"), std::vector<std::string>{"x"});
  view.SetSchedulable("a", true);
  p = view.Place({.ranks = 1, .slots_per_rank = 2, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)[0].worker_id(), "a");
  view.SetSchedulable("nobody", false);  // unknown: no-op
  EXPECT_FALSE(view.HasWorker("nobody"));
}

TEST(PlacementTest, AllocateConflictsAreRejectedWithNothingChanged) {
  ClusterView view = Cluster({{"a", 4}, {"b", 4}});
  ASSERT_TRUE(view.Allocate("j1", Make({{"a", {0, 1}}})).ok());
  auto expect_unchanged = [&] {
    EXPECT_EQ(view.free_slots("a"), 2);
    EXPECT_EQ(view.free_slots("b"), 4);
    EXPECT_EQ(view.allocated_slots("cpu"), 2);
    EXPECT_EQ(view.OwnersOn("a"), std::vector<std::string>{"j1"});
    EXPECT_TRUE(view.OwnersOn("b").empty());
  };
  // Rank 0 is fine (b), rank 1 collides with j1 on a slot 1.
  Status s = view.Allocate("j2", Make({{"b", {0, 1}}, {"a", {1, 2}}}));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("worker a slot 1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("j1"), std::string::npos) << s.message();
  expect_unchanged();

  s = view.Allocate("j2", Make({{"b", {0}}, {"zz", {0}}}));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("worker zz"), std::string::npos) << s.message();
  expect_unchanged();

  s = view.Allocate("j2", Make({{"b", {0}}, {"b", {4}}}));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("worker b slot 4"), std::string::npos) << s.message();
  expect_unchanged();

  s = view.Allocate("j2", Make({{"b", {-1}}}));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  expect_unchanged();

  s = view.Allocate("j2", Make({{"b", {2}}, {"b", {2}}}));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("worker b slot 2"), std::string::npos) << s.message();
  expect_unchanged();

  EXPECT_EQ(view.Allocate("", Make({{"b", {0}}})).code(), StatusCode::kInvalidArgument);
  expect_unchanged();

  // Same owner twice on the same slot is a conflict too.
  s = view.Allocate("j1", Make({{"a", {0}}}));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  expect_unchanged();
}

TEST(PlacementTest, ReleaseAndReleaseOnWorker) {
  ClusterView view = Cluster({{"a", 4}, {"b", 4}});
  ASSERT_TRUE(view.Allocate("j1", Make({{"a", {0, 1}}, {"b", {0}}, {"b", {2}}})).ok());
  ASSERT_TRUE(view.Allocate("j2", Make({{"a", {2}}})).ok());
  EXPECT_EQ(view.allocated_slots("cpu"), 5);
  EXPECT_EQ(view.OwnersOn("a"), (std::vector<std::string>{"j1", "j2"}));

  EXPECT_EQ(view.ReleaseOnWorker("j1", "b"), 2);
  EXPECT_EQ(view.free_slots("b"), 4);
  EXPECT_EQ(view.free_slots("a"), 1);
  EXPECT_EQ(view.ReleaseOnWorker("j1", "b"), 0);
  EXPECT_EQ(view.ReleaseOnWorker("j9", "a"), 0);
  EXPECT_EQ(view.ReleaseOnWorker("j1", "nowhere"), 0);

  EXPECT_EQ(view.Release("j1"), 2);
  EXPECT_EQ(view.free_slots("a"), 3);
  EXPECT_EQ(view.OwnersOn("a"), std::vector<std::string>{"j2"});
  EXPECT_EQ(view.Release("j1"), 0);
  EXPECT_EQ(view.allocated_slots("cpu"), 1);
  // Freed slots are handed out again, lowest first.
  auto p = view.Place({.ranks = 1, .slots_per_rank = 3, .kind = "cpu"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(Summary(*p), (Ranks{{"a", {0, 1, 3}}}));
}

TEST(PlacementTest, RemoveWorkerForgetsItsAllocations) {
  ClusterView view = Cluster({{"a", 4}, {"b", 4}});
  ASSERT_TRUE(view.Allocate("j1", Make({{"a", {0}}, {"b", {0}}})).ok());
  view.RemoveWorker("a");
  EXPECT_FALSE(view.HasWorker("a"));
  EXPECT_EQ(view.worker_count(), 1);
  EXPECT_EQ(view.free_slots("a"), 0);
  EXPECT_TRUE(view.OwnersOn("a").empty());
  EXPECT_EQ(view.total_slots("cpu"), 4);
  EXPECT_EQ(view.allocated_slots("cpu"), 1);
  EXPECT_EQ(view.Release("j1"), 1);  // only b's slot is left
  EXPECT_EQ(view.allocated_slots("cpu"), 0);
  view.RemoveWorker("a");  // absent: no-op
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 5, .kind = "cpu"}).has_value());
  // Re-adding comes back empty.
  ASSERT_TRUE(view.AddWorker("a", "cpu", 4).ok());
  EXPECT_EQ(view.free_slots("a"), 4);
  EXPECT_TRUE(view.OwnersOn("a").empty());
}

TEST(PlacementTest, AddWorkerUpdatesKeepAllocations) {
  ClusterView view = Cluster({{"a", 4}});
  ASSERT_TRUE(view.Allocate("j1", Make({{"a", {1}}})).ok());
  ASSERT_TRUE(view.AddWorker("a", "cpu", 8).ok());  // grow
  EXPECT_EQ(view.free_slots("a"), 7);
  EXPECT_EQ(view.OwnersOn("a"), std::vector<std::string>{"j1"});
  EXPECT_EQ(view.total_slots("cpu"), 8);
  ASSERT_TRUE(view.AddWorker("a", "cpu", 2).ok());  // shrink, slot 1 still inside
  EXPECT_EQ(view.free_slots("a"), 1);
  EXPECT_EQ(view.total_slots("cpu"), 2);

  Status s = view.AddWorker("a", "cpu", 1);  // would drop slot 1, in use
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("slot 1"), std::string::npos) << s.message();
  EXPECT_EQ(view.free_slots("a"), 1);
  EXPECT_EQ(view.total_slots("cpu"), 2);

  s = view.AddWorker("a", "gpu", 2);  // kind change while in use
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("kind"), std::string::npos) << s.message();
  EXPECT_EQ(view.total_slots("gpu"), 0);

  EXPECT_EQ(view.AddWorker("b", "cpu", -1).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(view.HasWorker("b"));

  // Idle: kind may change; the update keeps the schedulable flag.
  EXPECT_EQ(view.Release("j1"), 1);
  view.SetSchedulable("a", false);
  ASSERT_TRUE(view.AddWorker("a", "gpu", 4).ok());
  EXPECT_EQ(view.total_slots("cpu"), 0);
  EXPECT_EQ(view.total_slots("gpu"), 0);
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 1, .kind = "gpu"}).has_value());
  view.SetSchedulable("a", true);
  EXPECT_EQ(view.total_slots("gpu"), 4);
  EXPECT_TRUE(view.Place({.ranks = 1, .slots_per_rank = 4, .kind = "gpu"}).has_value());

  ASSERT_TRUE(view.AddWorker("z", "cpu", 0).ok());  // zero slots is allowed, takes nothing
  EXPECT_FALSE(view.Place({.ranks = 1, .slots_per_rank = 1, .kind = "cpu"}).has_value());
}

TEST(PlacementTest, CouldEverFitExplains) {
  ClusterView view = Cluster({{"a", 4}, {"b", 3}});
  ASSERT_TRUE(view.Allocate("busy", Make({{"a", {0, 1, 2, 3}}, {"b", {0, 1, 2}}})).ok());
  std::string why;
  EXPECT_TRUE(view.CouldEverFit({.ranks = 7, .slots_per_rank = 1, .kind = "cpu"}, &why));
  EXPECT_TRUE(view.CouldEverFit({.ranks = 1, .slots_per_rank = 4, .kind = "cpu"}));
  EXPECT_FALSE(view.CouldEverFit({.ranks = 2, .slots_per_rank = 4, .kind = "cpu"}, &why));
  EXPECT_EQ(why,
            "asks 2 ranks x 4 cpu slots; the schedulable cpu workers fit at most 1 such rank "
            "(largest worker: 4 slots)");
  EXPECT_TRUE(view.CouldEverFit({.ranks = 3, .slots_per_rank = 2, .kind = "cpu"}));
  EXPECT_FALSE(view.CouldEverFit({.ranks = 4, .slots_per_rank = 2, .kind = "cpu"}, &why));
  EXPECT_EQ(why,
            "asks 4 ranks x 2 cpu slots; the schedulable cpu workers fit at most 3 such ranks "
            "(largest worker: 4 slots)");
  EXPECT_FALSE(view.CouldEverFit({.ranks = 1, .slots_per_rank = 1, .kind = "gpu"}, &why));
  EXPECT_EQ(why,
            "asks 1 rank x 1 gpu slot; there are no schedulable gpu workers (connected, not "
            "drained nor shutting down)");
  view.SetSchedulable("a", false);
  EXPECT_FALSE(view.CouldEverFit({.ranks = 1, .slots_per_rank = 4, .kind = "cpu"}, &why));
  EXPECT_NE(why.find("largest worker: 3 slots"), std::string::npos) << why;
  EXPECT_FALSE(view.CouldEverFit({.ranks = 0, .slots_per_rank = 1, .kind = "cpu"}, &why));
  EXPECT_NE(why.find("ranks must be >= 1"), std::string::npos) << why;
}

// --- Randomized: the view against a brute-force model -------------------------------------

struct ModelWorker {
  std::string kind;
  int slots = 0;
  bool schedulable = true;
};

class RandomizedPlacement {
 public:
  explicit RandomizedPlacement(uint32_t seed) : rng_(seed) {}

  void Run(int steps) {
    for (int i = 0; i < 12; ++i) AddRandomWorker();
    for (int step = 0; step < steps; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const int op = Uniform(0, 99);
      if (op < 45) {
        PlaceAndAllocate();
      } else if (op < 70) {
        ReleaseRandom();
      } else if (op < 78) {
        ConflictingAllocate();
      } else if (op < 84) {
        ToggleSchedulable();
      } else if (op < 90) {
        ResizeRandom();
      } else if (op < 94) {
        RemoveRandomWorker();
      } else {
        AddRandomWorker();
      }
      CheckInvariants();
      if (::testing::Test::HasFailure()) return;
    }
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string Kind() { return Uniform(0, 3) == 0 ? "gpu" : "cpu"; }

  void AddRandomWorker() {
    std::string id = "w";  // not "w" + to_string: GCC 12 warns falsely (-Wrestrict)
    id += std::to_string(next_worker_++);
    const std::string kind = Kind();
    const int slots = Uniform(0, 8);
    ASSERT_TRUE(view_.AddWorker(id, kind, slots).ok());
    workers_[id] = {kind, slots, true};
  }

  // The placement model: which (worker, slot) each owner holds.
  std::set<std::pair<std::string, int>> Held() const {
    std::set<std::pair<std::string, int>> held;
    for (const auto& [owner, p] : owners_) {
      for (const auto& rp : p) {
        for (int s : rp.slots()) EXPECT_TRUE(held.emplace(rp.worker_id(), s).second);
      }
    }
    return held;
  }
  int UsedOn(const std::string& worker) const {
    int used = 0;
    for (const auto& [w, s] : Held()) used += w == worker;
    return used;
  }

  void PlaceAndAllocate() {
    GangRequest request{.ranks = Uniform(1, 6), .slots_per_rank = Uniform(1, 4), .kind = Kind()};
    if (Uniform(0, 3) == 0) request.ranks = Uniform(7, 20);
    // Brute force: per schedulable worker of the kind, how many ranks its free slots hold.
    std::vector<int> caps;
    std::map<std::string, int> free_of;
    for (const auto& [id, w] : workers_) {
      if (!w.schedulable || w.kind != request.kind) continue;
      free_of[id] = w.slots - UsedOn(id);
      caps.push_back(free_of[id] / request.slots_per_rank);
    }
    std::sort(caps.rbegin(), caps.rend());
    int min_workers = 0;
    for (int sum = 0; min_workers < int(caps.size()) && sum < request.ranks; ++min_workers) {
      sum += caps[min_workers];
    }
    int total = 0;
    for (int c : caps) total += c;

    auto p = view_.Place(request);
    if (total < request.ranks) {
      EXPECT_FALSE(p.has_value()) << "placed a job that cannot fit";
      return;
    }
    ASSERT_TRUE(p.has_value()) << "no placement although one exists";
    ASSERT_EQ(int(p->size()), request.ranks);
    std::vector<std::string> order;  // workers in rank order, each once (contiguity)
    for (int r = 0; r < request.ranks; ++r) {
      const auto& rp = (*p)[r];
      EXPECT_EQ(rp.rank(), r);
      ASSERT_TRUE(free_of.count(rp.worker_id())) << "wrong kind or not schedulable";
      EXPECT_EQ(rp.slots_size(), request.slots_per_rank);
      EXPECT_TRUE(std::is_sorted(rp.slots().begin(), rp.slots().end()));
      if (order.empty() || order.back() != rp.worker_id()) {
        EXPECT_EQ(std::count(order.begin(), order.end(), rp.worker_id()), 0)
            << "ranks on " << rp.worker_id() << " are not contiguous";
        order.push_back(rp.worker_id());
      }
    }
    EXPECT_EQ(int(order.size()), min_workers) << "not the fewest workers";
    if (order.size() == 1) {
      const int need = request.ranks * request.slots_per_rank;
      int tightest = 1 << 30;
      for (const auto& [id, f] : free_of) {
        if (f >= need) tightest = std::min(tightest, f);
      }
      EXPECT_EQ(free_of[order[0]], tightest) << "not the tightest single worker";
    }
    const std::string owner = "job-" + std::to_string(next_owner_++);
    ASSERT_TRUE(view_.Allocate(owner, *p).ok());
    owners_[owner] = *p;
    requested_[owner] = request;
  }

  std::string RandomOwner() {
    auto it = owners_.begin();
    std::advance(it, Uniform(0, int(owners_.size()) - 1));
    return it->first;
  }

  void ReleaseRandom() {
    if (owners_.empty()) return;
    const std::string owner = RandomOwner();
    int slots = 0;
    for (const auto& rp : owners_[owner]) slots += rp.slots_size();
    if (Uniform(0, 1) == 0) {
      EXPECT_EQ(view_.Release(owner), slots);
    } else {
      // The scheduler frees a job worker by worker as its ranks exit.
      std::set<std::string> on;
      for (const auto& rp : owners_[owner]) on.insert(rp.worker_id());
      int freed = 0;
      for (const std::string& w : on) freed += view_.ReleaseOnWorker(owner, w);
      EXPECT_EQ(freed, slots);
      EXPECT_EQ(view_.Release(owner), 0);
    }
    owners_.erase(owner);
    requested_.erase(owner);
  }

  // Another owner's placement again, or one slot of it mixed with free ones: always refused,
  // and nothing changes.
  void ConflictingAllocate() {
    if (owners_.empty()) return;
    Placement p = owners_[RandomOwner()];
    if (Uniform(0, 1) == 0 && p.size() > 1) p.erase(p.begin() + 1, p.end());
    auto before = Snapshot();
    EXPECT_EQ(view_.Allocate("intruder", p).code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Snapshot(), before);
  }

  void ToggleSchedulable() {
    if (workers_.empty()) return;
    auto it = workers_.begin();
    std::advance(it, Uniform(0, int(workers_.size()) - 1));
    it->second.schedulable = !it->second.schedulable;
    view_.SetSchedulable(it->first, it->second.schedulable);
  }

  void ResizeRandom() {
    if (workers_.empty()) return;
    auto it = workers_.begin();
    std::advance(it, Uniform(0, int(workers_.size()) - 1));
    const int slots = Uniform(0, 8);
    int highest_used = -1;
    for (const auto& [w, s] : Held()) {
      if (w == it->first) highest_used = std::max(highest_used, s);
    }
    Status s = view_.AddWorker(it->first, it->second.kind, slots);
    EXPECT_EQ(s.ok(), slots > highest_used) << s.ToString();
    if (s.ok()) it->second.slots = slots;
  }

  // A worker leaves: the scheduler releases every job that had a rank on it.
  void RemoveRandomWorker() {
    if (workers_.empty()) return;
    auto it = workers_.begin();
    std::advance(it, Uniform(0, int(workers_.size()) - 1));
    const std::string id = it->first;
    std::vector<std::string> owners = view_.OwnersOn(id);
    view_.RemoveWorker(id);
    workers_.erase(it);
    for (const std::string& owner : owners) {
      int slots_elsewhere = 0;
      for (const auto& rp : owners_[owner]) {
        if (rp.worker_id() != id) slots_elsewhere += rp.slots_size();
      }
      EXPECT_EQ(view_.Release(owner), slots_elsewhere);
      owners_.erase(owner);
      requested_.erase(owner);
    }
  }

  std::map<std::string, std::pair<int, std::vector<std::string>>> Snapshot() const {
    std::map<std::string, std::pair<int, std::vector<std::string>>> snap;
    for (const auto& [id, w] : workers_) snap[id] = {view_.free_slots(id), view_.OwnersOn(id)};
    snap["#cpu"] = {view_.allocated_slots("cpu"), {}};
    snap["#gpu"] = {view_.allocated_slots("gpu"), {}};
    return snap;
  }

  void CheckInvariants() {
    // Every job holds its whole gang (complete) or nothing (absent); no slot twice.
    const auto held = Held();
    for (const auto& [owner, p] : owners_) {
      const GangRequest& r = requested_[owner];
      ASSERT_EQ(int(p.size()), r.ranks);
      for (const auto& rp : p) {
        ASSERT_EQ(rp.slots_size(), r.slots_per_rank);
        auto on = view_.OwnersOn(rp.worker_id());
        EXPECT_TRUE(std::count(on.begin(), on.end(), owner)) << owner << " lost its slots";
      }
    }
    std::map<std::string, int> total, allocated;
    for (const auto& [id, w] : workers_) {
      const int used = UsedOn(id);
      EXPECT_EQ(view_.free_slots(id), w.slots - used) << id;
      std::set<std::string> expected_owners;
      for (const auto& [owner, p] : owners_) {
        for (const auto& rp : p) {
          if (rp.worker_id() == id) expected_owners.insert(owner);
        }
      }
      EXPECT_EQ(view_.OwnersOn(id),
                std::vector<std::string>(expected_owners.begin(), expected_owners.end()));
      if (w.schedulable) total[w.kind] += w.slots;
      allocated[w.kind] += used;
    }
    for (const char* kind : {"cpu", "gpu"}) {
      EXPECT_EQ(view_.total_slots(kind), total[kind]) << kind;
      EXPECT_EQ(view_.allocated_slots(kind), allocated[kind]) << kind;
    }
    EXPECT_EQ(view_.worker_count(), int(workers_.size()));
  }

  std::mt19937 rng_;
  ClusterView view_;
  std::map<std::string, ModelWorker> workers_;
  std::map<std::string, Placement> owners_;
  std::map<std::string, GangRequest> requested_;
  int next_worker_ = 0;
  int next_owner_ = 0;
};

TEST(PlacementPropertyTest, RandomOperationsKeepGangsWholeAndCountsExact) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomizedPlacement(seed).Run(400);
    if (HasFailure()) return;
  }
}

// --- Preemption ----------------------------------------------------------------------------

RunningJob Running(ClusterView& view, const std::string& owner, int priority, uint64_t order,
                   const Placement& placement) {
  EXPECT_TRUE(view.Allocate(owner, placement).ok()) << owner;
  return RunningJob{owner, priority, order, placement};
}

using Victims = std::optional<std::vector<std::string>>;

TEST(PreemptionTest, OnlyStrictlyLowerPriority) {
  ClusterView view = Cluster({{"a", 4}});
  std::vector<RunningJob> running = {Running(view, "same", 5, 1, Make({{"a", {0, 1, 2, 3}}}))};
  const GangRequest request{.ranks = 1, .slots_per_rank = 4, .kind = "cpu"};
  EXPECT_EQ(ChoosePreemptionVictims(view, request, 5, running), std::nullopt);
  EXPECT_EQ(ChoosePreemptionVictims(view, request, 4, running), std::nullopt);
  EXPECT_EQ(ChoosePreemptionVictims(view, request, 6, running),
            Victims(std::vector<std::string>{"same"}));
  EXPECT_EQ(view.free_slots("a"), 0);  // the view is not changed
}

TEST(PreemptionTest, FitsAlreadyNeedsNoVictims) {
  ClusterView view = Cluster({{"a", 4}});
  std::vector<RunningJob> running = {Running(view, "low", 0, 1, Make({{"a", {0}}}))};
  EXPECT_EQ(ChoosePreemptionVictims(view, {.ranks = 3, .slots_per_rank = 1}, 9, running),
            Victims(std::vector<std::string>{}));
}

TEST(PreemptionTest, LowestPriorityFirstThenNewest) {
  ClusterView view = Cluster({{"a", 2}, {"b", 2}, {"c", 2}, {"d", 2}});
  std::vector<RunningJob> running = {
      Running(view, "mid-new", 3, 9, Make({{"a", {0, 1}}})),
      Running(view, "low-old", 1, 1, Make({{"b", {0, 1}}})),
      Running(view, "low-new", 1, 2, Make({{"c", {0, 1}}})),
      Running(view, "high", 8, 10, Make({{"d", {0, 1}}})),
  };
  const GangRequest one{.ranks = 1, .slots_per_rank = 2, .kind = "cpu"};
  EXPECT_EQ(ChoosePreemptionVictims(view, one, 5, running),
            Victims(std::vector<std::string>{"low-new"}));
  const GangRequest two{.ranks = 2, .slots_per_rank = 2, .kind = "cpu"};
  EXPECT_EQ(ChoosePreemptionVictims(view, two, 5, running),
            Victims(std::vector<std::string>{"low-new", "low-old"}));
  const GangRequest three{.ranks = 3, .slots_per_rank = 2, .kind = "cpu"};
  EXPECT_EQ(ChoosePreemptionVictims(view, three, 5, running),
            Victims(std::vector<std::string>{"low-new", "low-old", "mid-new"}));
  const GangRequest four{.ranks = 4, .slots_per_rank = 2, .kind = "cpu"};
  EXPECT_EQ(ChoosePreemptionVictims(view, four, 5, running), std::nullopt);
  EXPECT_EQ(ChoosePreemptionVictims(view, four, 9, running)->size(), 4u);
  EXPECT_EQ(view.allocated_slots("cpu"), 8);
}

TEST(PreemptionTest, DropsVictimsNotNeededAfterAll) {
  // Newest first takes "tiny" (1 slot on a, not enough), then "big" (all of b), which alone
  // suffices: "tiny" is dropped again.
  ClusterView view = Cluster({{"a", 4}, {"b", 4}});
  std::vector<RunningJob> running = {
      Running(view, "old", 1, 1, Make({{"a", {1, 2, 3}}})),
      Running(view, "big", 1, 2, Make({{"b", {0, 1, 2, 3}}})),
      Running(view, "tiny", 1, 3, Make({{"a", {0}}})),
  };
  EXPECT_EQ(ChoosePreemptionVictims(view, {.ranks = 1, .slots_per_rank = 4}, 2, running),
            Victims(std::vector<std::string>{"big"}));
  EXPECT_EQ(view.free_slots("a"), 0);
  EXPECT_EQ(view.free_slots("b"), 0);
}

TEST(PreemptionTest, NulloptWhenAllLowerPriorityIsNotEnough) {
  ClusterView view = Cluster({{"a", 4}});
  std::vector<RunningJob> running = {
      Running(view, "low", 1, 1, Make({{"a", {0, 1}}})),
      Running(view, "high", 9, 2, Make({{"a", {2, 3}}})),
  };
  EXPECT_EQ(ChoosePreemptionVictims(view, {.ranks = 1, .slots_per_rank = 3}, 5, running),
            std::nullopt);
  EXPECT_EQ(ChoosePreemptionVictims(view, {.ranks = 1, .slots_per_rank = 2}, 5, running),
            Victims(std::vector<std::string>{"low"}));
  // Slots on a draining worker do not count: freeing them does not help.
  view.SetSchedulable("a", false);
  EXPECT_EQ(ChoosePreemptionVictims(view, {.ranks = 1, .slots_per_rank = 2}, 5, running),
            std::nullopt);
}

// Random clusters and running jobs: the victims are all of lower priority, preempting them
// makes the request fit, leaving any one of them out does not, they come in preference order
// (priority ascending, newest first), and nullopt exactly when freeing every lower-priority
// job is not enough.
TEST(PreemptionPropertyTest, VictimsAreSufficientMinimalAndPreferred) {
  std::mt19937 rng(7);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int cases_with_victims = 0;
  int cases_nullopt = 0;
  for (int round = 0; round < 300; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ClusterView view;
    const int workers = uniform(1, 6);
    for (int w = 0; w < workers; ++w) {
      ASSERT_TRUE(view.AddWorker(std::string(1, char('a' + w)), "cpu", uniform(1, 8)).ok());
    }
    std::vector<RunningJob> running;
    for (int j = 0; j < 12; ++j) {
      const GangRequest r{.ranks = uniform(1, 3), .slots_per_rank = uniform(1, 3)};
      auto p = view.Place(r);
      if (!p.has_value()) continue;
      std::string owner = "r";
      owner += std::to_string(j);
      running.push_back(Running(view, owner, uniform(0, 4), uint64_t(uniform(1, 1000)), *p));
    }
    const GangRequest request{.ranks = uniform(1, 4), .slots_per_rank = uniform(1, 4)};
    const int priority = uniform(1, 5);
    const auto before = view.allocated_slots("cpu");
    const auto victims = ChoosePreemptionVictims(view, request, priority, running);
    EXPECT_EQ(view.allocated_slots("cpu"), before);

    auto fits_without = [&](const std::vector<std::string>& owners) {
      ClusterView scratch = view;
      for (const std::string& o : owners) scratch.Release(o);
      return scratch.Place(request).has_value();
    };
    std::vector<std::string> all_lower;
    std::map<std::string, const RunningJob*> by_owner;
    for (const RunningJob& job : running) {
      by_owner[job.owner] = &job;
      if (job.priority < priority) all_lower.push_back(job.owner);
    }
    if (!victims.has_value()) {
      EXPECT_FALSE(fits_without(all_lower));
      ++cases_nullopt;
      continue;
    }
    EXPECT_TRUE(fits_without(*victims));
    if (!victims->empty()) ++cases_with_victims;
    for (size_t i = 0; i < victims->size(); ++i) {
      const RunningJob* v = by_owner.at((*victims)[i]);
      EXPECT_LT(v->priority, priority);
      std::vector<std::string> fewer = *victims;
      fewer.erase(fewer.begin() + i);
      EXPECT_FALSE(fits_without(fewer)) << (*victims)[i] << " is not needed";
      if (i > 0) {
        const RunningJob* prev = by_owner.at((*victims)[i - 1]);
        EXPECT_TRUE(prev->priority < v->priority ||
                    (prev->priority == v->priority && prev->order >= v->order))
            << "victims out of preference order";
      }
    }
    if (HasFailure()) return;
  }
  // The generator exercises both outcomes.
  EXPECT_GT(cases_with_victims, 20);
  EXPECT_GT(cases_nullopt, 20);
}

}  // namespace
}  // namespace dyt
