#include "trainer/checkpoint/retention.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>
#include <system_error>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/durable_file.h"

namespace dyt {
namespace {

// kill(pid, 0) probes without sending anything; EPERM means it exists but is not ours.
bool ProcessAlive(long pid) {
  if (pid == long(::getpid())) return true;
  return ::kill(pid_t(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

Status RemoveStaleTempEntries(const std::string& store, std::vector<std::string>* removed) {
  std::error_code ec;
  if (!std::filesystem::exists(store, ec)) return Status::Ok();
  std::vector<std::string> stale;
  std::filesystem::directory_iterator it(store, ec);
  if (ec) return IoError("cannot list", store, ec.value());
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto pid = ParseWriterPid(name);
    if (pid && !ProcessAlive(*pid)) stale.push_back(name);
  }
  if (ec) return IoError("cannot list", store, ec.value());
  for (const std::string& name : stale) {
    DYT_RETURN_IF_ERROR(RemoveTree(JoinPath(store, name)));
    if (removed) removed->push_back(name);
  }
  return Status::Ok();
}

Status ApplyRetention(const std::string& store, int keep_last_n, int64_t keep_every_k_steps,
                      RetentionReport* report) {
  if (keep_last_n < 0) return InvalidArgument("retention: keep_last_n must be >= 0");
  if (keep_every_k_steps < 0) return InvalidArgument("retention: keep_every_k_steps must be >= 0");
  RetentionReport local;
  RetentionReport& r = report ? *report : local;

  DYT_RETURN_IF_ERROR(RemoveStaleTempEntries(store, &r.removed_temp));
  DYT_ASSIGN_OR_RETURN(const std::vector<CheckpointDir> dirs, ListCheckpoints(store));

  std::set<std::string> keep;
  for (size_t i = 0; i < dirs.size() && i < size_t(keep_last_n); ++i) keep.insert(dirs[i].name);
  if (keep_every_k_steps > 0) {
    for (const CheckpointDir& d : dirs) {
      if (d.step % keep_every_k_steps == 0) keep.insert(d.name);
    }
  }
  auto latest = ReadLatest(store);
  if (latest.ok()) keep.insert(*latest);
  bool found_good = false;
  for (const CheckpointDir& d : dirs) {
    const Status s = VerifyCheckpoint(d.path);
    if (s.ok()) {
      keep.insert(d.name);
      found_good = true;
      break;
    }
    r.warnings.push_back("retention: " + s.message());
  }
  if (!found_good) {
    if (!dirs.empty()) {
      r.warnings.push_back("retention: no checkpoint in " + store + " verifies; deleting nothing");
    }
    return Status::Ok();
  }

  // Rename first, all together, then delete: a crash mid-way leaves only .old- entries.
  std::vector<std::string> doomed;
  for (const CheckpointDir& d : dirs) {
    if (keep.count(d.name)) continue;
    const std::string old = JoinPath(store, OldName(d.name));
    DYT_RETURN_IF_ERROR(RemoveTree(old));
    if (::rename(d.path.c_str(), old.c_str()) != 0) return IoError("rename", d.path, errno);
    doomed.push_back(old);
    r.deleted.push_back(d.name);
  }
  if (doomed.empty()) return Status::Ok();
  DYT_RETURN_IF_ERROR(FsyncDir(store));
  for (const std::string& old : doomed) DYT_RETURN_IF_ERROR(RemoveTree(old));
  return Status::Ok();
}

}  // namespace dyt
