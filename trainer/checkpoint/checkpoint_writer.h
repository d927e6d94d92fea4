// Saving a checkpoint into an artifact store, crash-safe at every point.
//
// The commit protocol (docs/checkpoints.md):
//   1. write model.safetensors, optimizer.safetensors, state.json into
//      <store>/.tmp-step-00000123-<pid>/, fsyncing each file;
//   2. write manifest.json (sizes and SHA-256 of the files, read back from disk) last, fsync
//      it and the temp directory;
//   3. rename the temp directory to <store>/step-00000123 and fsync the store. A step that
//      already exists is swapped out atomically (renameat2 RENAME_EXCHANGE), or, where the
//      filesystem lacks that, moved aside first; the old copy is then deleted;
//   4. only then point <store>/latest at it (temp file, fsync, rename, fsync the store).
// A crash before 3 leaves only a .tmp- directory, which readers never look at and
// ApplyRetention removes; a crash between 3 and 4 leaves `latest` on the previous checkpoint.
//
// One process writes a store at a time (rank 0 of one job).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/checkpoint/checkpoint_state.h"
#include "trainer/checkpoint/manifest.h"
#include "trainer/model/param_layout.h"

namespace dyt {

// What a save did, for the "checkpoint saved" log line, the event, and the scheduler's record.
struct SaveResult {
  std::string dir;                   // "<store>/step-00000123"
  std::string name;                  // "step-00000123"
  int64_t bytes = 0;                 // all files written, manifest.json included
  double seconds = 0;                // wall time of the whole save, `latest` included
  std::vector<ManifestEntry> files;  // name, size, sha256 of each file but manifest.json
};

// Saves `state` as <store>/StepDirName(state.step), creating the store if needed, and
// updates <store>/latest. `layout` is the trainer's ParamLayout; it must be the layout of
// state.model_config_json and the three buffers must each hold layout.total() floats, else
// INVALID_ARGUMENT (checked before anything is written, so a saved checkpoint always loads).
// On failure `latest` is unchanged and the temp directory is removed; only a failure of the
// final `latest` update leaves a complete step directory that `latest` does not name yet
// (FindLatestGood then keeps using the previous one). `result` may be null.
Status SaveCheckpoint(const std::string& store, const CheckpointState& state,
                      const ParamLayout& layout, SaveResult* result);

}  // namespace dyt
