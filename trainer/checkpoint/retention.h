// Deleting old checkpoints, without ever deleting the one a resume would need.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dyt {

struct RetentionReport {
  std::vector<std::string> deleted;       // step directory names deleted
  std::vector<std::string> removed_temp;  // stale .tmp- / .old- entries removed
  std::vector<std::string> warnings;      // checkpoints that failed verification, etc.
};

// Keeps, of the store's step directories:
//  * the newest `keep_last_n` by step (n >= 0);
//  * every step divisible by `keep_every_k_steps` (k > 0; k = 0 keeps none that way);
//  * the one `latest` names;
//  * the newest one that passes VerifyCheckpoint (found by verifying from the newest down,
//    normally just the newest: this reads it once more);
// and deletes the others, each by renaming it to a .old- name first (so a half-deleted
// directory never looks like a damaged checkpoint) and then removing it. When no checkpoint
// verifies, nothing is deleted (a warning says so): damaged checkpoints may still be of use
// to a person. Also removes stale temp entries (RemoveStaleTempEntries). `report` may be null.
// INVALID_ARGUMENT for negative n or k. Must not run while another process writes the store.
Status ApplyRetention(const std::string& store, int keep_last_n, int64_t keep_every_k_steps,
                      RetentionReport* report = nullptr);

// Removes ".tmp-*-<pid>" and ".old-*-<pid>" entries (files or directories) of the store whose
// writer process no longer exists on this host. Entries of this process and of live
// processes are left alone: they may be writes in progress. `removed` may be null.
Status RemoveStaleTempEntries(const std::string& store, std::vector<std::string>* removed);

}  // namespace dyt
