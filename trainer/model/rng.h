// A small, fully specified random number generator (splitmix64 + Box-Muller).
//
// We do not use <random>'s distributions: their output differs between standard libraries,
// and checkpoints must resume to the same numbers anywhere. The whole state is one uint64_t.
#pragma once

#include <cmath>
#include <cstdint>

namespace dyt {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

  uint64_t NextU64() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return double(NextU64() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias below 2^-64 * n).
  uint64_t NextBelow(uint64_t n) {
    __extension__ typedef unsigned __int128 U128;  // GCC/Clang; -Wpedantic-clean
    return uint64_t((U128(NextU64()) * n) >> 64);
  }
  // Standard normal (Box-Muller, one value per call for a simple state).
  double NextNormal() {
    const double u1 = 1.0 - NextDouble();  // (0, 1]
    const double u2 = NextDouble();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

// Mixes two values into one well-distributed seed (e.g. a base seed and a tensor index).
inline uint64_t MixSeed(uint64_t a, uint64_t b) {
  Rng r(a ^ (b * 0x9e3779b97f4a7c15ULL));
  r.NextU64();
  return r.NextU64();
}

}  // namespace dyt
