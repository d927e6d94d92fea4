// PruneAttemptDirs: the worker's retention of finished attempts' directories.
//
// Every attempt a worker runs leaves <work-dir>/jobs/<job>/attempt-<n>/ (its config.yaml, its
// output dir and each rank's full output, rank-<r>.log, up to --rank-log-max-mb per rank). A
// long-lived worker would fill its disk with them, so finished attempts are deleted once
// nothing in their directory changed for `keep` (the worker's --keep-attempt-dirs-days); a job
// directory left empty goes with them. Checkpoints are not here (they are in the artifact
// root) and are never touched.
#pragma once

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace dyt::worker {

struct PruneReport {
  std::vector<std::string> deleted;  // attempt directories (and empty job directories) removed
  std::vector<std::string> errors;   // "<path>: <why>" for what could not be read or removed
};

// Deletes <work_dir>/jobs/*/attempt-* directories whose newest entry (the directory itself or
// anything under it) is older than now - keep, except those in `active` (paths as
// "<job dir name>/attempt-<n>", the attempts this worker still holds). Entries that are not
// attempt directories are left alone.
PruneReport PruneAttemptDirs(
    const std::string& work_dir, const std::set<std::string>& active, std::chrono::seconds keep,
    std::filesystem::file_time_type now = std::filesystem::file_time_type::clock::now());

}  // namespace dyt::worker
