// Limits of bearer tokens that both the scheduler (which enforces them) and dytctl (which
// refuses a bad --expires before asking) must agree on.
#pragma once

#include <cstdint>

namespace dyt {

// The longest lifetime a token may be created with (10 years); 0 means it never expires.
inline constexpr int64_t kMaxTokenLifetimeS = int64_t{10} * 365 * 24 * 3600;

}  // namespace dyt
