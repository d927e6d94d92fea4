// Attempt fencing of a checkpoint store: one scheduler attempt of a job writes it at a time.
//
// The scheduler may start attempt N+1 of a job while ranks of attempt N still run (their worker
// was taken for lost but was only slow or cut off; a scheduler restart that a worker reconnected
// to late). Both would save into, and prune, the same store: a stale attempt overwrote `latest`
// and deleted the new attempt's checkpoints. So each attempt claims the store when it starts
// (<store>/attempt holds the highest attempt that did), and a trainer whose attempt is below
// the claim saves and prunes nothing, and stops (Trainer checks every few seconds). Attempt 0
// (a run outside the scheduler) is not fenced.
//
// What is left: a save already under way when the new attempt claims the store still finishes
// (a consistent checkpoint of the same run, which the new attempt's retention later prunes).
#pragma once

#include <string>

#include "common/status.h"

namespace dyt {

inline constexpr const char* kAttemptFile = "attempt";

// The highest attempt that claimed `store`; 0 when none did (or the store does not exist).
// DATA_LOSS when the file holds no attempt number.
StatusOr<int> StoreAttempt(const std::string& store);

// Records `attempt` as the store's claim unless a higher one is there; returns the claim in
// force afterwards (`attempt`, or the higher one: this attempt is then superseded).
StatusOr<int> ClaimStore(const std::string& store, int attempt);

}  // namespace dyt
