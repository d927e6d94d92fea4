// float32 -> bfloat16 conversion with round-to-nearest-even, as PyTorch's .to(torch.bfloat16).
#pragma once

#include <cstdint>
#include <cstring>

namespace dyt {

// bfloat16 is the top 16 bits of a float32. Adding 0x7fff plus the lowest kept bit before
// truncating rounds to nearest with ties to even; overflow correctly carries into the exponent
// (up to infinity). NaNs are kept NaN (quiet) with their sign, which plain rounding could turn
// into infinity.
inline uint16_t Bf16FromFloat(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x0040u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

inline float FloatFromBf16(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace dyt
