// Finding checkpoints in an artifact store, and the one to resume from.
//
// A store (checkpoint_names.h) holds step directories and `latest`. Only canonical step
// directory names count; ".tmp-" and ".old-" entries (writes in progress or abandoned) are
// never considered.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/checkpoint/checkpoint_state.h"
#include "trainer/model/config.h"

namespace dyt {

struct CheckpointDir {
  int64_t step = 0;
  std::string name;  // "step-00000123"
  std::string path;  // "<store>/step-00000123"
};

// The store's step directories, highest step first. A store that does not exist has none.
StatusOr<std::vector<CheckpointDir>> ListCheckpoints(const std::string& store);

// The checkpoint name <store>/latest holds. NOT_FOUND when there is no `latest`, DATA_LOSS
// when it does not hold a step directory name.
StatusOr<std::string> ReadLatest(const std::string& store);

struct ResumePoint {
  CheckpointState state;
  std::string dir;  // the checkpoint directory it was loaded from
  // One line per checkpoint skipped or per oddity found on the way, for the log and events:
  // "skipped /store/step-00000300: model.safetensors: sha256 mismatch (file corrupt)".
  std::vector<std::string> warnings;
};

// The checkpoint to resume from. Candidates: the one `latest` names, then every step
// directory below it, highest first; when `latest` is missing, unreadable or names a missing
// directory, every step directory, highest first (with a warning). Step directories above the
// one `latest` names were never committed as latest and are not used (a warning says so).
// Each candidate is loaded with LoadCheckpoint(dir, expect):
//  * damaged (NOT_FOUND, DATA_LOSS or an I/O error): skipped with a warning, try the next;
//  * intact but unusable (FAILED_PRECONDITION: another model config, an unknown format
//    version): that error is returned. Falling back past it would silently resume an older
//    run of a different model; the operator has to decide.
// Returns NOT_FOUND when the store holds no step directory at all (a fresh start), DATA_LOSS
// listing every problem when step directories exist but none is intact.
StatusOr<ResumePoint> FindLatestGood(const std::string& store, const ModelConfig* expect);

}  // namespace dyt
