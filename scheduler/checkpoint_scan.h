// ScanCheckpointDir: the complete checkpoints in one job's artifact directory, read from disk.
//
// Workers report each checkpoint their trainer saves, but a trainer can save one that nobody
// reports: the SIGTERM a trainer gets when its worker dies (PR_SET_PDEATHSIG) makes it
// checkpoint after the worker is gone. The scheduler sees the artifact root (it serves
// downloads from it), so it finds such checkpoints there (Scheduler::AdoptCheckpointsOnDisk).
//
// A directory counts only when it is a committed checkpoint of this job: a canonical
// step-NNNNNNNN name (never a .tmp-/.old- entry) of a step from 1 to the job's steps, a real
// directory and real files (no symlinks), a manifest.json that parses and names that step,
// every listed file present with its listed size, and a state.json of the same job, step and
// an attempt the job has had. The
// SHA-256 digests are not recomputed here (that reads every byte); the record carries the
// manifest's digests, which `dytctl pull` checks each download against.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "dyt/v1/job.pb.h"

namespace dyt {

// What the job allows: no checkpoint past its steps, none of an attempt it has not had.
struct CheckpointBounds {
  int64_t max_step = 0;  // spec.train.steps; 0: no bound
  int max_attempt = 0;   // the job's current attempt
};

struct CheckpointScan {
  std::vector<v1::CheckpointRecord> found;  // by step, ascending
  // Step directories that are not complete checkpoints of the job, each with why
  // ("step-00000007: model.safetensors: size 12 differs from the 4096 in manifest.json").
  std::vector<std::string> skipped;
};

// Reads `job_dir` (<artifact_root>/<job_id>), skipping the steps in `known`. A missing
// directory is an empty scan (a symlink one is skipped); an unreadable one is its error.
StatusOr<CheckpointScan> ScanCheckpointDir(const std::string& job_dir, const std::string& job_id,
                                           const std::set<int64_t>& known,
                                           const CheckpointBounds& bounds);

}  // namespace dyt
