#include "trainer/data/permutation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace dyt {
namespace {

// Reference outputs of splitmix64 (Vigna's splitmix64.c), so the generator is the real one.
TEST(SplitMix64Test, MatchesReferenceOutputs) {
  SplitMix64 zero(0);
  EXPECT_EQ(zero.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(zero.Next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(zero.Next(), 0x06c45d188009454fULL);
  SplitMix64 r(1234567);
  EXPECT_EQ(r.Next(), 6457827717110365317ULL);
  EXPECT_EQ(r.Next(), 3203168211198807973ULL);
  EXPECT_EQ(r.Next(), 9817491932198370423ULL);
}

TEST(SplitMix64Test, BelowStaysInRange) {
  SplitMix64 r(7);
  EXPECT_EQ(r.Below(1), 0u);
  for (uint64_t bound : {2ULL, 3ULL, 10ULL, 1000003ULL, (1ULL << 63) + 1}) {
    for (int i = 0; i < 1000; ++i) EXPECT_LT(r.Below(bound), bound);
  }
}

// Pinned values (also computed by an independent Python implementation of the same spec):
// if this changes, every saved loader position silently means a different data order.
TEST(EpochPermutationTest, GoldenValues) {
  EXPECT_EQ(EpochPermutation(10, 1234, 0), (std::vector<uint64_t>{9, 5, 7, 0, 1, 6, 2, 3, 8, 4}));
  EXPECT_EQ(EpochPermutation(10, 1234, 1), (std::vector<uint64_t>{8, 1, 3, 4, 6, 5, 2, 0, 7, 9}));
  EXPECT_EQ(EpochPermutation(10, 1, 0), (std::vector<uint64_t>{7, 4, 3, 8, 5, 9, 2, 0, 6, 1}));
}

TEST(EpochPermutationTest, IsAPermutation) {
  for (uint64_t n : {0ULL, 1ULL, 2ULL, 17ULL, 1000ULL}) {
    std::vector<uint64_t> p = EpochPermutation(n, 42, 3);
    ASSERT_EQ(p.size(), n);
    std::sort(p.begin(), p.end());
    std::vector<uint64_t> iota(n);
    std::iota(iota.begin(), iota.end(), uint64_t{0});
    EXPECT_EQ(p, iota);
  }
}

TEST(EpochPermutationTest, SeedAndEpochChangeTheOrder) {
  const auto a = EpochPermutation(1000, 1, 0);
  EXPECT_EQ(a, EpochPermutation(1000, 1, 0));
  EXPECT_NE(a, EpochPermutation(1000, 2, 0));
  EXPECT_NE(a, EpochPermutation(1000, 1, 1));
  EXPECT_NE(EpochPermutation(1000, 2, 0), EpochPermutation(1000, 1, 1));
}

}  // namespace
}  // namespace dyt
