#include "trainer/checkpoint/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "trainer/checkpoint/checkpoint_names.h"

namespace dyt {
namespace {

std::string ParentDir(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace

Status WriteFileSynced(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create", path, errno);
  Status s;
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (s.ok() && left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      s = IoError("write", path, errno);
      break;
    }
    p += w;
    left -= size_t(w);
  }
  if (s.ok() && ::fsync(fd) != 0) s = IoError("fsync", path, errno);
  if (::close(fd) != 0 && s.ok()) s = IoError("close", path, errno);
  return s;
}

Status ReplaceFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string dir = ParentDir(path);
  const std::string tmp = JoinPath(dir, TempName(BaseName(path)));
  Status s = WriteFileSynced(tmp, bytes);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = IoError("rename", tmp, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return FsyncDir(dir);
}

Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open directory", dir, errno);
  Status s;
  // Some filesystems (and some network ones) refuse fsync on a directory; EINVAL there means
  // "nothing to do", not a failed write.
  if (::fsync(fd) != 0 && errno != EINVAL) s = IoError("fsync directory", dir, errno);
  ::close(fd);
  return s;
}

Status EnsureDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return FailedPrecondition(dir + " exists and is not a directory");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create directory", dir, ec.value());
  return FsyncDir(ParentDir(dir));
}

StatusOr<std::string> ReadFileToString(const std::string& path, int64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + " does not exist");
    return IoError("cannot open", path, errno);
  }
  std::string out;
  char buf[1 << 16];
  Status s;
  while (true) {
    const ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      s = IoError("read", path, errno);
      break;
    }
    if (r == 0) break;
    if (int64_t(out.size()) + r > max_bytes) {
      s = DataLoss(path + " is larger than " + std::to_string(max_bytes) + " bytes");
      break;
    }
    out.append(buf, size_t(r));
  }
  ::close(fd);
  if (!s.ok()) return s;
  return out;
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return IoError("cannot remove", path, ec.value());
  return Status::Ok();
}

}  // namespace dyt
