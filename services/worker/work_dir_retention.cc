#include "services/worker/work_dir_retention.h"

#include <algorithm>
#include <system_error>

namespace dyt::worker {
namespace {

namespace fs = std::filesystem;

// The newest modification time of `dir` and everything under it; errors go to `errors`.
fs::file_time_type Newest(const fs::path& dir, std::vector<std::string>& errors) {
  std::error_code ec;
  fs::file_time_type newest = fs::last_write_time(dir, ec);
  if (ec) {
    errors.push_back(dir.string() + ": " + ec.message());
    return fs::file_time_type::max();  // unknown: keep it
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::file_time_type t = fs::last_write_time(it->path(), ec);
    if (ec) break;
    newest = std::max(newest, t);
  }
  if (ec) {
    errors.push_back(dir.string() + ": " + ec.message());
    return fs::file_time_type::max();
  }
  return newest;
}

bool IsAttemptDirName(const std::string& name) {
  const std::string prefix = "attempt-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  return name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
}

}  // namespace

PruneReport PruneAttemptDirs(const std::string& work_dir, const std::set<std::string>& active,
                             std::chrono::seconds keep, fs::file_time_type now) {
  PruneReport report;
  const fs::path jobs = fs::path(work_dir) / "jobs";
  std::error_code ec;
  fs::directory_iterator job_it(jobs, ec);
  if (ec) {
    if (ec != std::errc::no_such_file_or_directory) {
      report.errors.push_back(jobs.string() + ": " + ec.message());
    }
    return report;
  }
  const fs::file_time_type cutoff = now - keep;
  for (; job_it != fs::directory_iterator(); job_it.increment(ec)) {
    if (ec) {
      report.errors.push_back(jobs.string() + ": " + ec.message());
      break;
    }
    if (!job_it->is_directory(ec) || job_it->is_symlink(ec)) continue;
    const fs::path job_dir = job_it->path();
    const std::string job_name = job_dir.filename().string();
    std::vector<fs::path> old;
    fs::directory_iterator attempt_it(job_dir, ec);
    for (; !ec && attempt_it != fs::directory_iterator(); attempt_it.increment(ec)) {
      const std::string name = attempt_it->path().filename().string();
      if (!IsAttemptDirName(name) || active.count(job_name + "/" + name) > 0) continue;
      if (!attempt_it->is_directory(ec) || attempt_it->is_symlink(ec)) continue;
      if (Newest(attempt_it->path(), report.errors) < cutoff) old.push_back(attempt_it->path());
    }
    if (ec) {
      report.errors.push_back(job_dir.string() + ": " + ec.message());
      ec.clear();
      continue;
    }
    for (const fs::path& dir : old) {
      fs::remove_all(dir, ec);
      if (ec) {
        report.errors.push_back(dir.string() + ": " + ec.message());
        ec.clear();
      } else {
        report.deleted.push_back(dir.string());
      }
    }
    // The job directory goes once empty (remove fails, harmlessly, when it is not).
    if (!old.empty() && fs::is_empty(job_dir, ec) && !ec && fs::remove(job_dir, ec)) {
      report.deleted.push_back(job_dir.string());
    }
    ec.clear();
  }
  return report;
}

}  // namespace dyt::worker
