// Helpers for the scheduler state tests: temp directories, records with distinct values.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "dyt/v1/scheduler_state.pb.h"
#include "scheduler/state_store.h"
#include "tests/common/temp_dir.h"

namespace dyt::testing {

// Opens the store at `path`; fails the test (and returns null) when it cannot.
inline std::unique_ptr<StateStore> OpenStore(const std::string& path,
                                             const StateStoreOptions& options = {}) {
  auto store = StateStore::Open(path, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

// A job record whose spec fields derive from `name`; no id (CreateJob assigns one).
inline v1::JobRecord MakeJob(const std::string& name, const std::string& owner = "alice",
                             v1::JobState state = v1::QUEUED) {
  v1::JobRecord record;
  v1::Job* job = record.mutable_job();
  job->set_state(state);
  job->mutable_created()->set_seconds(1700000000);
  job->mutable_updated()->set_seconds(1700000001);
  v1::JobSpec* spec = job->mutable_spec();
  spec->set_name(name);
  spec->set_owner(owner);
  spec->set_priority(static_cast<int32_t>(name.size()));
  spec->set_max_restarts(2);
  spec->mutable_model()->set_preset("tiny");
  spec->mutable_model()->set_norm("dyt");
  spec->mutable_model()->set_alpha0_attn(0.8f);
  spec->mutable_data()->add_train_paths("/data/" + name + "/*.bin");
  spec->mutable_train()->set_steps(1000);
  spec->mutable_resources()->set_ranks(2);
  spec->mutable_resources()->set_slots_per_rank(1);
  spec->mutable_resources()->set_kind("cpu");
  return record;
}

inline v1::JobEvent MakeEvent(v1::JobState state, const std::string& reason) {
  v1::JobEvent event;
  event.set_state(state);
  event.set_reason(reason);
  event.mutable_time()->set_seconds(1700000100);
  return event;
}

}  // namespace dyt::testing
