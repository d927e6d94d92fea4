#include "services/worker/rank_logs.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

namespace dyt::worker {

RankLogs::~RankLogs() {
  for (auto& [rank, file] : files_) {
    if (file.f != nullptr) std::fclose(file.f);
  }
}

std::string RankLogs::PathOf(const std::string& dir, int rank) {
  return dir + "/rank-" + std::to_string(rank) + ".log";
}

bool RankLogs::Open(int rank) {
  File& file = files_[rank];
  if (file.closed) return false;
  if (file.f != nullptr) return true;
  const std::string path = PathOf(dir_, rank);
  // Appending: a worker restarted on the same attempt dir keeps what was there.
  file.f = std::fopen(path.c_str(), "ae");
  if (file.f == nullptr) {
    spdlog::warn("cannot open {}: {} (this rank's output is not kept on disk)", path,
                 std::strerror(errno));
    file.closed = true;
    return false;
  }
  std::fseek(file.f, 0, SEEK_END);
  file.bytes = std::ftell(file.f);
  return true;
}

bool RankLogs::Append(int rank, const std::string& line) {
  if (!Open(rank)) return false;
  File& file = files_[rank];
  const std::string path = PathOf(dir_, rank);
  const int64_t size = static_cast<int64_t>(line.size()) + 1;
  if (file.bytes + size > max_bytes_) {
    std::fprintf(file.f, "[dyt-worker: output beyond %lld bytes is not kept in this file]\n",
                 static_cast<long long>(max_bytes_));
    std::fclose(file.f);
    file.f = nullptr;
    file.closed = true;
    return false;
  }
  // One write per line, flushed: a reader (tail -f) sees whole lines as they come.
  const bool ok = std::fwrite(line.data(), 1, line.size(), file.f) == line.size() &&
                  std::fputc('\n', file.f) != EOF && std::fflush(file.f) == 0;
  if (!ok) {
    spdlog::warn("cannot write {}: {} (this rank's further output is not kept on disk)", path,
                 std::strerror(errno));
    std::fclose(file.f);
    file.f = nullptr;
    file.closed = true;
    return false;
  }
  file.bytes += size;
  return true;
}

}  // namespace dyt::worker
