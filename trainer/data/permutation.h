// Seeded shuffles that give the same order on every platform and standard library.
//
// std::shuffle and std::uniform_int_distribution are implementation-defined, so the same seed
// would give a different data order under libstdc++ and libc++ and break exact resume across
// machines. Everything here is specified bit for bit: splitmix64 (Vigna's constants), integers
// below a bound by rejection (no modulo bias), and a textbook Fisher–Yates shuffle.
#pragma once

#include <cstdint>
#include <vector>

namespace dyt {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, bound); bound must be >= 1.
  uint64_t Below(uint64_t bound);

 private:
  uint64_t state_;
};

// splitmix64's output function: a bijection that scatters nearby inputs.
uint64_t Mix64(uint64_t x);

// The seed of one epoch's shuffle, so epochs of one run and runs with nearby seeds all get
// unrelated orders: Mix64(Mix64(seed) + epoch).
uint64_t EpochSeed(uint64_t seed, uint64_t epoch);

// A permutation of 0..n-1: Fisher–Yates (i from n-1 down to 1 swaps i with Below(i + 1))
// driven by SplitMix64(EpochSeed(seed, epoch)).
std::vector<uint64_t> EpochPermutation(uint64_t n, uint64_t seed, uint64_t epoch);

}  // namespace dyt
