#include "scheduler/checkpoint_scan.h"

#include <google/protobuf/util/time_util.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_state.h"
#include "trainer/checkpoint/durable_file.h"
#include "trainer/checkpoint/manifest.h"
#include "trainer/checkpoint/state_json.h"

namespace dyt {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

// state.json holds scalars and both configs: far below this.
constexpr int64_t kMaxStateJsonBytes = 16 << 20;

// The record of the checkpoint `dir` (at `step`), or why it is not one.
StatusOr<v1::CheckpointRecord> ReadCheckpoint(const std::string& dir, int64_t step,
                                              const std::string& job_id,
                                              const CheckpointBounds& bounds) {
  if (step < 1) return DataLoss("step 0: no training in it");
  if (bounds.max_step > 0 && step > bounds.max_step) {
    return DataLoss("step " + std::to_string(step) + " is past the job's " +
                    std::to_string(bounds.max_step) + " steps");
  }
  DYT_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(dir));
  if (manifest.step != step) {
    return DataLoss("manifest.json names step " + std::to_string(manifest.step) + ", not " +
                    std::to_string(step));
  }
  v1::CheckpointRecord record;
  record.set_job_id(job_id);
  record.set_step(step);
  record.set_path(dir);  // as the trainer reports it: JoinPath(<store>, <step dir name>)
  struct stat st {};
  const std::string manifest_path = JoinPath(dir, kManifestFile);
  if (::lstat(manifest_path.c_str(), &st) != 0) {
    return DataLoss(std::string(kManifestFile) + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return DataLoss(std::string(kManifestFile) + ": not a regular file");
  int64_t total = st.st_size;
  const int64_t manifest_mtime = st.st_mtime;
  bool has_state = false;
  for (const ManifestEntry& entry : manifest.files) {
    const std::string path = JoinPath(dir, entry.name);
    // lstat: a symlink is not a checkpoint file (it could point anywhere; downloads would
    // serve what it points to).
    if (::lstat(path.c_str(), &st) != 0) {
      return DataLoss(entry.name + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return DataLoss(entry.name + ": not a regular file");
    if (st.st_size != entry.size) {
      return DataLoss(entry.name + ": size " + std::to_string(st.st_size) + " differs from the " +
                      std::to_string(entry.size) + " in manifest.json");
    }
    v1::CheckpointFile* file = record.add_files();
    file->set_name(entry.name);
    file->set_size(entry.size);
    file->set_sha256(entry.sha256);
    total += entry.size;
    has_state = has_state || entry.name == kStateFile;
  }
  record.set_total_bytes(total);
  if (!has_state) return DataLoss(std::string(kStateFile) + " is not in manifest.json");
  DYT_ASSIGN_OR_RETURN(std::string text,
                       ReadFileToString(JoinPath(dir, kStateFile), kMaxStateJsonBytes));
  CheckpointState state;
  DYT_RETURN_IF_ERROR(StateFromJson(text, &state));
  if (state.meta.job_id != job_id) {
    return DataLoss(std::string(kStateFile) + " is of job '" + state.meta.job_id + "'");
  }
  if (state.step != step) {
    return DataLoss(std::string(kStateFile) + " is of step " + std::to_string(state.step));
  }
  if (state.meta.attempt > bounds.max_attempt) {
    return DataLoss(std::string(kStateFile) + " names attempt " +
                    std::to_string(state.meta.attempt) + "; the job has had " +
                    std::to_string(bounds.max_attempt));
  }
  record.set_attempt(state.meta.attempt);
  // As the workers report them: 0 for a loss the trainer did not know (NaN in state.json).
  if (std::isfinite(state.meta.train_loss)) record.set_loss(state.meta.train_loss);
  if (std::isfinite(state.meta.val_loss)) record.set_val_loss(state.meta.val_loss);
  const bool timed = std::isfinite(state.meta.unix_time) && state.meta.unix_time > 0;
  *record.mutable_created() =
      timed ? TimeUtil::NanosecondsToTimestamp(int64_t(state.meta.unix_time * 1e9))
            : TimeUtil::SecondsToTimestamp(manifest_mtime);
  return record;
}

}  // namespace

StatusOr<CheckpointScan> ScanCheckpointDir(const std::string& job_dir, const std::string& job_id,
                                           const std::set<int64_t>& known,
                                           const CheckpointBounds& bounds) {
  CheckpointScan scan;
  std::error_code ec;
  if (fs::is_symlink(job_dir, ec)) {
    scan.skipped.push_back(job_dir + ": a symlink, not the job's artifact directory");
    return scan;
  }
  fs::directory_iterator it(job_dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return scan;
  if (ec) return Internal("cannot read " + job_dir + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return Internal("cannot read " + job_dir + ": " + ec.message());
    const std::string name = it->path().filename().string();
    const std::optional<int64_t> step = ParseStepDirName(name);
    if (!step || known.count(*step) > 0) continue;
    if (it->is_symlink(ec)) {
      scan.skipped.push_back(name + ": a symlink, not a checkpoint directory");
      continue;
    }
    if (!it->is_directory(ec)) continue;
    StatusOr<v1::CheckpointRecord> record =
        ReadCheckpoint(JoinPath(job_dir, name), *step, job_id, bounds);
    if (record.ok()) {
      scan.found.push_back(std::move(*record));
    } else {
      scan.skipped.push_back(name + ": " + record.status().message());
    }
  }
  std::sort(scan.found.begin(), scan.found.end(),
            [](const auto& a, const auto& b) { return a.step() < b.step(); });
  return scan;
}

}  // namespace dyt
