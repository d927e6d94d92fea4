// Helpers for the checkpoint tests: temp stores, tiny models with known values, file damage.
#pragma once

#include <cstdint>
#include <string>

#include "tests/common/temp_dir.h"
#include "trainer/checkpoint/checkpoint_state.h"
#include "trainer/model/config.h"
#include "trainer/model/param_layout.h"

namespace dyt::testing {

// A tiny finalized, validated DyT model (GQA, untied head, embed scale, DyT bias).
ModelConfig TinyConfig();

// A state for `config` at `step` whose every field is set and distinct: params, m and v are
// seeded random values (with -0.0, a subnormal and round-to-even ties sprinkled in) with zero
// layout padding; scalars and metadata derive from `step`.
CheckpointState MakeState(const ModelConfig& config, int64_t step);

// Damage a file: flip every bit of the byte at `offset`; cut it to `size` bytes.
void FlipByte(const std::string& path, int64_t offset);
void Truncate(const std::string& path, int64_t size);
int64_t FileSize(const std::string& path);
std::string ReadText(const std::string& path);
void WriteText(const std::string& path, const std::string& text);

// Copies directory `from` to `to` (recursively).
void CopyDir(const std::string& from, const std::string& to);

// A pid that belongs to no running process (a reaped child's).
long DeadPid();

// Bitwise float equality (so -0.0 != 0.0 and NaN == NaN of the same payload).
bool SameBits(float a, float b);

}  // namespace dyt::testing
