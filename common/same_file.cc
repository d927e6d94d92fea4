#include "common/same_file.h"

#include <filesystem>

namespace dyt {

bool SameFile(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool same = fs::equivalent(a, b, ec);
    if (!ec) return same;
  }
  const fs::path pa = fs::weakly_canonical(fs::absolute(a, ec), ec);
  const fs::path pb = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return pa.lexically_normal() == pb.lexically_normal();
}

Status RefuseSameFile(const NamedPath& output, const std::vector<NamedPath>& others) {
  for (const NamedPath& other : others) {
    if (other.path.empty() || !SameFile(output.path, other.path)) continue;
    return InvalidArgument(output.option + " " + output.path + ": is also " + other.option + " " +
                           other.path + "; writing it would destroy that");
  }
  return Status::Ok();
}

Status CheckOutputFile(const NamedPath& output) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (output.path.empty()) return InvalidArgument(output.option + ": must not be empty");
  if (fs::is_directory(output.path, ec)) {
    return InvalidArgument(output.option + " " + output.path + ": is a directory; name a file");
  }
  const fs::path dir = fs::path(output.path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    return InvalidArgument(output.option + " " + output.path + ": no directory " + dir.string() +
                           " (create it first)");
  }
  return Status::Ok();
}

std::string RelativeNote(const std::string& path) {
  if (path.empty() || path.front() == '/') return "";
  std::error_code ec;
  const std::string cwd = std::filesystem::current_path(ec).string();
  return ec ? "" : " (relative to the working directory " + cwd + ")";
}

}  // namespace dyt
