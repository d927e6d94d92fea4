// scheduler_state_timing DIR [SECONDS] [THREADS...]: acknowledged (fsynced) job submissions per
// second through StateStore::CreateJob, for each thread count, each on a fresh store under DIR.
// A hand-run measurement for docs/scheduler.md, not a test: it depends on the disk.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/state_store.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: scheduler_state_timing DIR [SECONDS] [THREADS...]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  std::vector<int> thread_counts;
  for (int i = 3; i < argc; ++i) thread_counts.push_back(std::atoi(argv[i]));
  if (thread_counts.empty()) thread_counts = {1, 2, 4, 8, 16, 32};

  std::printf("%8s %12s %10s %12s %16s\n", "threads", "writes/s", "commits", "WAL syncs",
              "commits/sync");
  for (int threads : thread_counts) {
    const std::string path = dir + "/timing-" + std::to_string(threads);
    std::filesystem::remove_all(path);
    auto store = dyt::StateStore::Open(path);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    const dyt::StoreCounters before = (*store)->counters();
    std::atomic<bool> stop{false};
    std::atomic<long> writes{0};
    std::vector<std::thread> workers;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        dyt::v1::JobRecord record;
        record.mutable_job()->set_state(dyt::v1::QUEUED);
        record.mutable_job()->mutable_spec()->set_name("timing");
        record.mutable_job()->mutable_spec()->set_owner("bench");
        dyt::v1::JobEvent event;
        event.set_state(dyt::v1::QUEUED);
        event.set_reason("submitted");
        for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
          record.set_client_request_id(std::to_string(t) + "-" + std::to_string(i));
          auto created = (*store)->CreateJob(record, event);
          if (!created.ok()) {
            std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
            std::exit(1);
          }
          writes.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& worker : workers) worker.join();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const dyt::StoreCounters after = (*store)->counters();
    const auto commits = after.commits - before.commits;
    const auto syncs = after.wal_syncs - before.wal_syncs;
    std::printf("%8d %12.0f %10llu %12llu %16.2f\n", threads, writes.load() / elapsed,
                static_cast<unsigned long long>(commits), static_cast<unsigned long long>(syncs),
                syncs > 0 ? static_cast<double>(commits) / static_cast<double>(syncs) : 0.0);
    std::fflush(stdout);
    store->reset();
    std::filesystem::remove_all(path);
  }
  return 0;
}
