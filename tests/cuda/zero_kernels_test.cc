// ZeroRanges against its plain definition: on a buffer filled with a pattern, exactly the
// elements of the listed ranges become 0 and every other keeps its value, for empty ranges
// (first, between, last), adjacent ranges, one range longer than the grid (the grid-stride
// loop) and random layouts; and its argument checks.
#include "trainer/cuda/zero_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/cuda/test_util.h"

namespace dyt::cuda {
namespace {

using Ranges = std::vector<std::pair<int64_t, int64_t>>;  // [begin, end)

void CheckZeroes(int64_t n, const Ranges& ranges) {
  SCOPED_TRACE(testing::Message() << "n=" << n << ", " << ranges.size() << " ranges");
  std::vector<int64_t> begin, prefix{0};
  std::vector<float> want(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) want[size_t(i)] = 1.f + float(i % 1000);  // never 0
  for (const auto& [b, e] : ranges) {
    begin.push_back(b);
    prefix.push_back(prefix.back() + (e - b));
    std::fill(want.begin() + b, want.begin() + e, 0.f);
  }
  std::vector<float> start(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) start[size_t(i)] = 1.f + float(i % 1000);
  test::DevArray<float> buf(start);
  test::DevVector<int64_t> d_begin(begin), d_prefix(prefix);
  DYT_ASSERT_OK(ZeroRanges(buf.get(), d_begin.get(), d_prefix.get(), int(ranges.size()),
                           prefix.back(), nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  const std::vector<float> got = buf.Download();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(got[size_t(i)], want[size_t(i)]) << "element " << i;
  }
}

TEST(ZeroRangesTest, ZeroesExactlyTheRanges) {
  DYT_REQUIRE_GPU();
  CheckZeroes(10, {{3, 4}});
  CheckZeroes(100, {{0, 0}, {0, 7}, {7, 7}, {7, 9}, {20, 21}, {50, 50}, {99, 100}, {100, 100}});
  CheckZeroes(5000, {{0, 0}, {1, 4999}});
  // Longer than the grid covers at once on any GPU (132 SMs x 8 blocks x 256 threads).
  CheckZeroes(600'000, {{17, 33}, {40, 580'001}, {599'990, 600'000}});
}

TEST(ZeroRangesTest, RandomLayouts) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  SCOPED_TRACE(testing::Message() << "seed=" << seed);
  std::mt19937_64 rng(seed);
  for (int rep = 0; rep < 4; ++rep) {
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 20'000)(rng);
    const int cuts = std::uniform_int_distribution<int>(1, 60)(rng);
    std::vector<int64_t> at(static_cast<size_t>(cuts));
    for (int64_t& a : at) a = std::uniform_int_distribution<int64_t>(0, n)(rng);
    at.push_back(0);
    at.push_back(n);
    std::sort(at.begin(), at.end());
    Ranges ranges;  // every other segment between cut points (some empty)
    for (size_t i = rep % 2; i + 1 < at.size(); i += 2) ranges.push_back({at[i], at[i + 1]});
    CheckZeroes(n, ranges);
  }
}

TEST(ZeroRangesTest, RejectsBadArguments) {
  float* f = reinterpret_cast<float*>(uintptr_t{256});  // never dereferenced: checks come first
  const int64_t* t = reinterpret_cast<const int64_t*>(uintptr_t{512});
  for (const auto& [st, what] :
       {std::pair{ZeroRanges(f, t, t, -1, 0, nullptr), "count=-1"},
        std::pair{ZeroRanges(f, t, t, 1, -1, nullptr), "total=-1"},
        std::pair{ZeroRanges(f, t, t, 0, 5, nullptr), "no range"},
        std::pair{ZeroRanges(nullptr, t, t, 1, 5, nullptr), "base is null"},
        std::pair{ZeroRanges(f, nullptr, t, 1, 5, nullptr), "begin is null"},
        std::pair{ZeroRanges(f, t, nullptr, 1, 5, nullptr), "prefix is null"}}) {
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << what;
    EXPECT_NE(st.message().find(what), std::string::npos) << st.ToString();
  }
  // Nothing to zero: nothing is read.
  EXPECT_TRUE(ZeroRanges(nullptr, nullptr, nullptr, 0, 0, nullptr).ok());
}

}  // namespace
}  // namespace dyt::cuda
