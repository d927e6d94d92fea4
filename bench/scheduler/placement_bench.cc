// dyt-bench-placement: one scheduling pass over a large queue, the way the Scheduler does it:
// visit the JobQueue in order, Place each job on the ClusterView and Allocate what fits.
//
// Default: 10,000 queued jobs (fixed seed; 80% 1 rank x 1 slot, 15% 2-8 ranks x 1 slot, 5%
// 1-2 ranks x 8 slots) onto 1,000 cpu workers of 8 slots. Building the queue and the view is
// not timed; the pass is. Prints each repetition and the median.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "scheduler/placement.h"

namespace {

struct PassResult {
  int placed = 0;
  int64_t slots = 0;
  double seconds = 0;
};

std::vector<std::pair<dyt::JobQueue::Entry, dyt::GangRequest>> MakeJobs(int jobs, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uniform_int_distribution<int> priority(0, 3);
  std::vector<std::pair<dyt::JobQueue::Entry, dyt::GangRequest>> out;
  out.reserve(jobs);
  for (int i = 0; i < jobs; ++i) {
    dyt::GangRequest request;
    const int p = percent(rng);
    if (p < 80) {
      request.ranks = 1;
      request.slots_per_rank = 1;
    } else if (p < 95) {
      request.ranks = std::uniform_int_distribution<int>(2, 8)(rng);
      request.slots_per_rank = 1;
    } else {
      request.ranks = std::uniform_int_distribution<int>(1, 2)(rng);
      request.slots_per_rank = 8;
    }
    out.push_back({{"job-" + std::to_string(i + 1), priority(rng), uint64_t(i + 1)}, request});
  }
  return out;
}

PassResult OnePass(int workers, int slots, int jobs, uint32_t seed) {
  dyt::ClusterView view;
  for (int w = 0; w < workers; ++w) {
    if (!view.AddWorker("worker-" + std::to_string(w), "cpu", slots).ok()) std::abort();
  }
  const auto specs = MakeJobs(jobs, seed);
  dyt::JobQueue queue;
  std::unordered_map<std::string, dyt::GangRequest> requests;
  for (const auto& [entry, request] : specs) {
    queue.Push(entry);
    requests[entry.job_id] = request;
  }

  PassResult result;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> scheduled;
  queue.ForEach([&](const dyt::JobQueue::Entry& entry) {
    const dyt::GangRequest& request = requests.at(entry.job_id);
    auto placement = view.Place(request);
    if (!placement.has_value()) return true;
    if (!view.Allocate(entry.job_id + "/1", *placement).ok()) std::abort();
    scheduled.push_back(entry.job_id);
    ++result.placed;
    result.slots += int64_t(request.ranks) * request.slots_per_rank;
    return true;
  });
  for (const std::string& id : scheduled) queue.Remove(id);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (view.allocated_slots("cpu") != result.slots) std::abort();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dyt-bench-placement: time one scheduling pass (Place + Allocate per job)"};
  int jobs = 10000;
  int workers = 1000;
  int slots = 8;
  int reps = 7;
  uint32_t seed = 42;
  app.add_option("--jobs", jobs, "Queued jobs")->capture_default_str();
  app.add_option("--workers", workers, "Simulated cpu workers")->capture_default_str();
  app.add_option("--slots", slots, "Slots per worker")->capture_default_str();
  app.add_option("--reps", reps, "Repetitions (median reported)")->capture_default_str();
  app.add_option("--seed", seed, "Job mix seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<double> times;
  PassResult last;
  for (int r = 0; r < reps; ++r) {
    last = OnePass(workers, slots, jobs, seed);
    times.push_back(last.seconds);
    std::printf("rep %d: placed %d of %d jobs, %lld of %lld slots used, %.2f ms\n", r + 1,
                last.placed, jobs, static_cast<long long>(last.slots),
                static_cast<long long>(workers) * slots, last.seconds * 1e3);
  }
  std::sort(times.begin(), times.end());
  std::printf(
      "placement pass: %d jobs onto %d workers x %d slots: placed %d, slots used %lld; "
      "median %.2f ms (min %.2f, max %.2f) over %d reps\n",
      jobs, workers, slots, last.placed, static_cast<long long>(last.slots),
      times[times.size() / 2] * 1e3, times.front() * 1e3, times.back() * 1e3, reps);
  return 0;
}
