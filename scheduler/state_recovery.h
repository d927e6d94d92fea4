// Rebuilding the scheduler's in-memory state from its store after a restart.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "dyt/v1/scheduler_state.pb.h"
#include "scheduler/state_store.h"

namespace dyt {

struct RecoveredState {
  // Every job that is not terminal (QUEUED, SCHEDULED, RUNNING, PREEMPTED, RESTARTING), in id
  // order, which for store-assigned ids is submission order (FIFO within a priority).
  std::vector<v1::JobRecord> active_jobs;
  // The highest-step checkpoint of each active job that has one, by job id: where a requeued
  // job resumes from.
  std::map<std::string, v1::CheckpointRecord> latest_checkpoints;
  // Every registered worker, in id order. Their heartbeats start over: a worker counts as
  // alive again once it reconnects.
  std::vector<v1::WorkerRecord> workers;
  // How many jobs are in each state, terminal ones included (for the jobs-by-state gauge).
  std::map<v1::JobState, int64_t> jobs_by_state;
};

// Reads what a restarted scheduler needs: one pass over `jobs`, one over `workers`, one seek
// per active job in `checkpoints`. Job events, rendezvous values and terminal jobs stay on
// disk and are read on demand. Fails with the first read error (DATA_LOSS for a record that
// does not parse, naming it).
StatusOr<RecoveredState> LoadAll(const StateStore& store);

}  // namespace dyt
