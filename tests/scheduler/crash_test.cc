// A real crash: a writer process (scheduler_crash_writer) submits jobs from 4 threads and
// acknowledges each durable write on a pipe; it is SIGKILLed mid-stream. After reopening the
// store, every acknowledged write is there, and every batch is whole (a job and its event
// together, or neither). Two rounds: the second writer continues on the crashed store.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "scheduler/state_store.h"
#include "tests/scheduler/test_util.h"

namespace dyt {
namespace {

using testing::OpenStore;
using testing::TempDir;

struct Acknowledged {
  std::map<std::string, std::string> created;  // job id -> client request id
  std::set<std::string> running;               // job ids
  int signal = 0;                              // what ended the writer
};

// Runs the writer on `db` until it has acknowledged `kill_after` writes, SIGKILLs it, then
// reads every acknowledgement it wrote before it died.
Acknowledged RunAndKill(const std::string& db, const std::string& prefix, int kill_after) {
  Acknowledged acks;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return acks;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);  // the duplicate does not inherit O_CLOEXEC
    ::execl(DYT_CRASH_WRITER_BINARY, DYT_CRASH_WRITER_BINARY, db.c_str(), "4", prefix.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string pending;
  int count = 0;
  bool killed = false;
  while (true) {
    if (!killed && std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the writer acknowledged only " << count << " writes in 60 s";
      ::kill(pid, SIGKILL);
      killed = true;
    }
    pollfd poll_fd{fds[0], POLLIN, 0};
    if (::poll(&poll_fd, 1, 1000) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;  // EOF: the writer is gone and everything it wrote has been read
    pending.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::istringstream line(pending.substr(0, newline));
      pending.erase(0, newline + 1);
      std::string kind, id, request;
      line >> kind >> id >> request;
      if (kind == "C") {
        acks.created[id] = request;
      } else if (kind == "R") {
        acks.running.insert(id);
      }
      ++count;
    }
    if (!killed && count >= kill_after) {
      ::kill(pid, SIGKILL);  // mid-stream: its 4 threads have writes in flight
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) acks.signal = WTERMSIG(status);
  EXPECT_TRUE(pending.empty()) << "a torn acknowledgement line: " << pending;
  return acks;
}

void CheckStore(const std::string& db, const std::vector<Acknowledged>& rounds) {
  auto store = OpenStore(db);
  ASSERT_NE(store, nullptr);
  // Every acknowledged write is there.
  size_t acknowledged = 0;
  for (const Acknowledged& acks : rounds) {
    for (const auto& [id, request] : acks.created) {
      auto job = store->GetJob(id);
      ASSERT_TRUE(job.ok()) << "acknowledged job lost: " << job.status().ToString();
      EXPECT_EQ(job->job().spec().name(), request);
      auto indexed = store->FindJobByRequestId(request);
      ASSERT_TRUE(indexed.ok()) << indexed.status().ToString();
      EXPECT_EQ(*indexed, id);
      ++acknowledged;
    }
    for (const std::string& id : acks.running) {
      EXPECT_EQ(store->GetJob(id)->job().state(), v1::RUNNING) << id;
    }
  }
  // Every batch is whole, acknowledged or not: each job has exactly the events of its state.
  size_t stored = 0;
  std::string last_id;
  ASSERT_TRUE(store
                  ->ForEachJob([&](const v1::JobRecord& record) {
                    const std::string& id = record.job().id();
                    auto events = store->ListJobEvents(id);
                    EXPECT_TRUE(events.ok());
                    const size_t expected = record.job().state() == v1::RUNNING ? 2 : 1;
                    EXPECT_EQ(events->size(), expected) << id << " half a batch";
                    if (!record.client_request_id().empty()) {
                      auto indexed = store->FindJobByRequestId(record.client_request_id());
                      EXPECT_TRUE(indexed.ok() && *indexed == id) << id;
                    }
                    last_id = id;
                    ++stored;
                    return Status::Ok();
                  })
                  .ok());
  std::printf("[ info ] %zu jobs acknowledged, %zu in the store after the crash\n", acknowledged,
              stored);
  EXPECT_GE(stored, acknowledged);
  // Ids continue after the highest one committed: nothing is handed out twice.
  auto next = store->CreateJob(testing::MakeJob("after crash"), {});
  ASSERT_TRUE(next.ok());
  EXPECT_GT(next->record.job().id(), last_id);
}

TEST(CrashTest, EveryAcknowledgedWriteSurvivesSigkill) {
  TempDir dir;
  const std::string db = dir.Join("db");
  std::vector<Acknowledged> rounds;
  rounds.push_back(RunAndKill(db, "first", 400));
  ASSERT_EQ(rounds.back().signal, SIGKILL) << "the writer ended before it was killed";
  CheckStore(db, rounds);
  rounds.push_back(RunAndKill(db, "second", 400));
  ASSERT_EQ(rounds.back().signal, SIGKILL) << "the writer ended before it was killed";
  CheckStore(db, rounds);
}

}  // namespace
}  // namespace dyt
