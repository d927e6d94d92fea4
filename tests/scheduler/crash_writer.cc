// scheduler_crash_writer DB THREADS PREFIX: submits jobs from THREADS threads until it is
// killed, acknowledging each durable write on stdout only after the store returned OK:
//   C <job id> <client request id>    the job and its QUEUED event were committed
//   R <job id>                        its RUNNING state and event were committed
// crash_test SIGKILLs it mid-stream and checks that everything acknowledged survived.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/state_store.h"

namespace {

// One write(2) per line: lines from different threads never interleave (< PIPE_BUF).
void Acknowledge(const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(1, line.data() + done, line.size() - done);
    if (n <= 0) std::_Exit(3);  // the reader is gone
    done += static_cast<size_t>(n);
  }
}

[[noreturn]] void Fail(const dyt::Status& status) {
  std::fprintf(stderr, "scheduler_crash_writer: %s\n", status.ToString().c_str());
  std::_Exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: scheduler_crash_writer DB THREADS PREFIX\n");
    return 2;
  }
  auto store = dyt::StateStore::Open(argv[1]);
  if (!store.ok()) Fail(store.status());
  const int threads = std::atoi(argv[2]);
  const std::string prefix = argv[3];
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < 1000000; ++i) {
        const std::string request = prefix + "-" + std::to_string(t) + "-" + std::to_string(i);
        dyt::v1::JobRecord record;
        record.mutable_job()->set_state(dyt::v1::QUEUED);
        record.mutable_job()->mutable_spec()->set_name(request);
        record.set_client_request_id(request);
        dyt::v1::JobEvent queued;
        queued.set_state(dyt::v1::QUEUED);
        auto created = (*store)->CreateJob(record, queued);
        if (!created.ok()) Fail(created.status());
        const std::string id = created->record.job().id();
        Acknowledge("C " + id + " " + request + "\n");

        dyt::v1::JobRecord running = created->record;
        running.mutable_job()->set_state(dyt::v1::RUNNING);
        dyt::v1::JobEvent started;
        started.set_state(dyt::v1::RUNNING);
        auto seq = (*store)->PutJobWithEvent(running, started);
        if (!seq.ok()) Fail(seq.status());
        Acknowledge("R " + id + "\n");
      }
    });
  }
  for (auto& worker : workers) worker.join();
  return 0;
}
