// RankLogs: every output line of an attempt's trainers, kept on the worker's disk.
//
// The scheduler keeps only the last lines of a job, in memory (scheduler/job_logs.h); the
// worker keeps all of them, one file per rank: <attempt dir>/rank-<r>.log, appended line by
// line as the trainer writes (a reader sees each line once it is complete). A file stops
// growing at `max_bytes`, with one last line saying so, so a runaway trainer cannot fill the
// worker's disk. Not thread safe: the rank group's thread owns it (rank_group.h's callbacks).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>

namespace dyt::worker {

class RankLogs {
 public:
  static constexpr int64_t kDefaultMaxBytes = int64_t{1} << 30;  // per rank

  explicit RankLogs(std::string dir, int64_t max_bytes = kDefaultMaxBytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  ~RankLogs();
  RankLogs(const RankLogs&) = delete;
  RankLogs& operator=(const RankLogs&) = delete;

  // Appends `line` and a newline to rank `rank`'s file (opened on its first line). Returns
  // false when the line was not written (the file is full, or cannot be opened or written: the
  // first such failure is logged).
  bool Append(int rank, const std::string& line);
  // Creates rank `rank`'s file (empty) if it does not exist yet: a rank that prints nothing
  // still has one, so "silent" reads differently from "not kept". False when it cannot.
  bool Open(int rank);

  static std::string PathOf(const std::string& dir, int rank);

 private:
  struct File {
    std::FILE* f = nullptr;
    int64_t bytes = 0;
    bool closed = false;  // full, or failed: no more writes
  };
  std::string dir_;
  int64_t max_bytes_;
  std::map<int, File> files_;
};

}  // namespace dyt::worker
