#include "trainer/dist/file_kv_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <system_error>
#include <thread>

namespace dyt::dist {

namespace {

constexpr auto kFirstPoll = std::chrono::milliseconds(1);
constexpr auto kMaxPoll = std::chrono::milliseconds(50);

// Writes all of `data` to `fd`, retrying short writes and EINTR.
Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("FileKvStore: write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// A temp name no other writer (thread or process, on any host sharing the directory) uses.
std::string TempName(const std::string& key) {
  static std::atomic<uint64_t> counter{0};
  char host[64] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return "." + key + ".tmp." + host + "." + std::to_string(::getpid()) + "." +
         std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + "." +
         std::to_string(counter.fetch_add(1));
}

}  // namespace

StatusOr<std::unique_ptr<FileKvStore>> FileKvStore::Open(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("FileKvStore: directory is empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("FileKvStore: create directory", dir, ec.value());
  if (!std::filesystem::is_directory(dir, ec)) {
    return FailedPrecondition("FileKvStore: " + dir + " is not a directory");
  }
  return std::unique_ptr<FileKvStore>(new FileKvStore(dir));
}

Status FileKvStore::Set(const std::string& key, const std::string& value) {
  DYT_RETURN_IF_ERROR(ValidateKvKey(key));
  const std::string tmp = dir_ + "/" + TempName(key);
  const std::string path = dir_ + "/" + key;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("FileKvStore: create", tmp, errno);
  Status st = WriteAll(fd, value, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = IoError("FileKvStore: fsync", tmp, errno);
  if (::close(fd) != 0 && st.ok()) st = IoError("FileKvStore: close", tmp, errno);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = IoError("FileKvStore: rename to", path, errno);
  }
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

StatusOr<std::string> FileKvStore::TryRead(const std::string& key) const {
  const std::string path = dir_ + "/" + key;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("FileKvStore: key '" + key + "' not set");
    return IoError("FileKvStore: open", path, errno);
  }
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return IoError("FileKvStore: read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

StatusOr<std::string> FileKvStore::Get(const std::string& key, std::chrono::milliseconds timeout) {
  DYT_RETURN_IF_ERROR(ValidateKvKey(key));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kFirstPoll);
  while (true) {
    StatusOr<std::string> value = TryRead(key);
    if (value.ok() || value.status().code() != StatusCode::kNotFound) return value;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return DeadlineExceeded("FileKvStore: key '" + key + "' was not set in " + dir_ + " within " +
                              std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::min(pause, deadline - now));
    pause = std::min(pause * 2,
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(kMaxPoll));
  }
}

}  // namespace dyt::dist
