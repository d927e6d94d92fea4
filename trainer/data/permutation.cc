#include "trainer/data/permutation.h"

#include <numeric>
#include <utility>

namespace dyt {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::Next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  return Mix64(state_);
}

uint64_t SplitMix64::Below(uint64_t bound) {
  // Values below `threshold` would make some residues one more likely than others; 2^64 mod
  // bound of them exist, so a draw is rejected with probability < bound / 2^64.
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const uint64_t r = Next();
    if (r >= threshold) return r % bound;
  }
}

uint64_t EpochSeed(uint64_t seed, uint64_t epoch) { return Mix64(Mix64(seed) + epoch); }

std::vector<uint64_t> EpochPermutation(uint64_t n, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> p(n);
  std::iota(p.begin(), p.end(), uint64_t{0});
  SplitMix64 rng(EpochSeed(seed, epoch));
  for (uint64_t i = n; i > 1; --i) {
    std::swap(p[i - 1], p[rng.Below(i)]);
  }
  return p;
}

}  // namespace dyt
