// WorkPool: a fixed set of threads running posted tasks in FIFO order.
//
// The scheduler serves SubmitJob on gRPC's callback API and runs each submission's blocking,
// synced store write here: the pool size caps concurrent writers (and so sets the group-commit
// width) without gRPC creating and tearing down a thread per request, which is what limits its
// sync server under this load (bench/RESULTS.md, "Scheduler"). The standard library has no
// thread pool and the libraries we use expose none for this, hence this small class.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dyt {

class WorkPool {
 public:
  explicit WorkPool(int threads);
  // Runs the tasks already posted, then joins the threads.
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  void Post(std::function<void()> task);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dyt
