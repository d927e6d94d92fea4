// state.json: the scalar part of a CheckpointState (everything but the tensors).
//
// Integers are written as JSON integers (64-bit exact, also the uint64 RNG state and loader
// seed), doubles in their shortest exact form, and a NaN loss as null, so every field reads
// back bit-exact. The model config is embedded as a JSON object, the job config as text.
#pragma once

#include <string>

#include "common/status.h"
#include "trainer/checkpoint/checkpoint_state.h"

namespace dyt {

// state.model_config_json must be a JSON object (SaveCheckpoint checks that first).
std::string StateToJson(const CheckpointState& state);

// Fills every field of `state` except params, adam_m and adam_v. model_config_json comes back
// in canonical form (the config object re-serialized compactly). DATA_LOSS naming the field
// when one is missing or has the wrong type; FAILED_PRECONDITION for an unknown format version.
Status StateFromJson(const std::string& json, CheckpointState* state);

}  // namespace dyt
