#include "scheduler/state_recovery.h"

#include "scheduler/job_states.h"

namespace dyt {

StatusOr<RecoveredState> LoadAll(const StateStore& store) {
  RecoveredState state;
  DYT_RETURN_IF_ERROR(store.ForEachJob([&](const v1::JobRecord& record) {
    ++state.jobs_by_state[record.job().state()];
    if (!IsTerminalJobState(record.job().state())) state.active_jobs.push_back(record);
    return Status::Ok();
  }));
  for (const v1::JobRecord& record : state.active_jobs) {
    const std::string& id = record.job().id();
    StatusOr<v1::CheckpointRecord> latest = store.LatestCheckpoint(id);
    if (latest.ok()) {
      state.latest_checkpoints.emplace(id, std::move(latest).value());
    } else if (latest.status().code() != StatusCode::kNotFound) {
      return latest.status().WithContext("load state store " + store.path());
    }
  }
  DYT_ASSIGN_OR_RETURN(state.workers, store.ListWorkers());
  return state;
}

}  // namespace dyt
