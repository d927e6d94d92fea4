// The RoPE kernels against their CPU twins (dyt::cpu::RopeForward / RopeBackward with
// dyt::cpu::RopeTables), on rows wider than the rotated heads (a fused qkv row: q rotated, then
// k through an offset pointer, v never touched), the vector path (head_dim % 8 == 0) and the
// pair-at-a-time path (head_dim 6, odd ld, misaligned x); forward then backward gives the input
// back. Tolerances: see test_util.h.
#include "trainer/cuda/rope_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cpu/kernels.h"

namespace dyt::cuda {
namespace {

using test::DevArray;
using test::RelL2;

constexpr float kTheta = 10000.f;

struct RopeCase {
  int B, T, n_heads, head_dim;
  int64_t ld;       // row stride of the buffer
  int64_t col0;     // first rotated column (x = buffer + col0)
  size_t misalign;  // elements of padding in front of the buffer
};

void PrintTo(const RopeCase& c, std::ostream* os) {
  *os << "B" << c.B << "_T" << c.T << "_H" << c.n_heads << "_hd" << c.head_dim << "_ld" << c.ld
      << "_col" << c.col0 << "_mis" << c.misalign;
}

// The rotated block [B*T, n_heads*head_dim] of a [B*T, ld] buffer starting at column col0.
std::vector<float> Extract(const std::vector<float>& buf, const RopeCase& c) {
  const int64_t rows = int64_t{c.B} * c.T, w = int64_t{c.n_heads} * c.head_dim;
  std::vector<float> out(static_cast<size_t>(rows * w));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < w; ++j) out[r * w + j] = buf[r * c.ld + c.col0 + j];
  }
  return out;
}

// Every element outside the rotated block is bit-identical to the input's.
void ExpectOutsideUntouched(const std::vector<float>& got, const std::vector<float>& in,
                            const RopeCase& c) {
  const int64_t rows = int64_t{c.B} * c.T, w = int64_t{c.n_heads} * c.head_dim;
  int64_t changed = 0, first = -1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c.ld; ++j) {
      if (j >= c.col0 && j < c.col0 + w) continue;
      const int64_t i = r * c.ld + j;
      // Compare bits so that a NaN sentinel counts as unchanged only if still NaN.
      const bool same = (std::isnan(got[i]) && std::isnan(in[i])) || got[i] == in[i];
      if (!same) {
        ++changed;
        if (first < 0) first = i;
      }
    }
  }
  EXPECT_EQ(changed, 0) << "elements outside the rotated heads changed; first at " << first;
}

void ExpectClose(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                 double tol) {
  const int64_t bad = test::FirstNonFinite(got);
  EXPECT_EQ(bad, -1) << what << ": element " << bad << " is not finite";
  const double err = RelL2(got, want);
  double max_abs = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(double(got[i]) - want[i]));
  }
  EXPECT_LE(err, tol) << what << ": ||gpu - cpu|| / ||cpu|| = " << err << ", max |diff| "
                      << max_abs;
}

void CheckCase(const RopeCase& c, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "B=" << c.B << " T=" << c.T << " n_heads=" << c.n_heads
                                  << " head_dim=" << c.head_dim << " ld=" << c.ld << " col0="
                                  << c.col0 << " misalign=" << c.misalign << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const int64_t rows = int64_t{c.B} * c.T;
  const size_t n = static_cast<size_t>(rows * c.ld);
  std::vector<float> in = test::Rounded<bf16>(test::RandomNonZero(rng, n, 0.05f, 2.f));
  // Sentinels in the untouched part: NaN in every third, so a kernel that reads and rewrites
  // an element it should not touch (or mixes it into its math) shows.
  const int64_t w = int64_t{c.n_heads} * c.head_dim;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c.ld; ++j) {
      if ((j < c.col0 || j >= c.col0 + w) && j % 3 == 0) in[r * c.ld + j] = NAN;
    }
  }
  const int half = c.head_dim / 2;
  std::vector<float> cos(static_cast<size_t>(c.T) * half), sin(cos.size());
  cpu::RopeTables(cos.data(), sin.data(), c.T, c.head_dim, kTheta);
  DevArray<float> cos_dev(cos), sin_dev(sin);

  std::vector<float> fwd_cpu = Extract(in, c);
  cpu::RopeForward(fwd_cpu.data(), cos.data(), sin.data(), c.B, c.T, c.n_heads, c.head_dim);
  std::vector<float> bwd_cpu = Extract(in, c);
  cpu::RopeBackward(bwd_cpu.data(), cos.data(), sin.data(), c.B, c.T, c.n_heads, c.head_dim);

  // Forward.
  DevArray<bf16> buf(in, c.misalign);
  DYT_ASSERT_OK(RopeForward(buf.get() + c.col0, c.ld, cos_dev.get(), sin_dev.get(), c.B, c.T,
                            c.n_heads, c.head_dim, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  const std::vector<float> fwd = buf.Download();
  ExpectClose("forward", Extract(fwd, c), fwd_cpu, test::kBf16Tol);
  ExpectOutsideUntouched(fwd, in, c);

  // Backward of the forward's output: the input again (two bf16 roundings).
  DYT_ASSERT_OK(RopeBackward(buf.get() + c.col0, c.ld, cos_dev.get(), sin_dev.get(), c.B, c.T,
                             c.n_heads, c.head_dim, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  const std::vector<float> round_trip = buf.Download();
  ExpectClose("forward then backward", Extract(round_trip, c), Extract(in, c), test::kBf16Tol);
  ExpectOutsideUntouched(round_trip, in, c);

  // Backward alone.
  DevArray<bf16> buf2(in, c.misalign);
  DYT_ASSERT_OK(RopeBackward(buf2.get() + c.col0, c.ld, cos_dev.get(), sin_dev.get(), c.B, c.T,
                             c.n_heads, c.head_dim, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  const std::vector<float> bwd = buf2.Download();
  ExpectClose("backward", Extract(bwd, c), bwd_cpu, test::kBf16Tol);
  ExpectOutsideUntouched(bwd, in, c);
}

class RopeKernelTest : public ::testing::TestWithParam<RopeCase> {};

TEST_P(RopeKernelTest, MatchesCpu) {
  DYT_REQUIRE_GPU();
  CheckCase(GetParam(), test::TestSeed());
}

// Fused qkv rows of Hq = 8, Hkv = 2 heads of 128: q at column 0, k at column 1024, both with
// ld = 12 * 128; contiguous q/k; small heads; the pair path (head_dim 6, odd ld, misaligned).
const RopeCase kCases[] = {
    {2, 17, 4, 64, 256, 0, 0},   {3, 33, 8, 128, 1536, 0, 0}, {3, 33, 2, 128, 1536, 1024, 0},
    {1, 2048, 4, 64, 256, 0, 0}, {2, 9, 3, 8, 40, 8, 0},      {2, 11, 5, 6, 37, 3, 0},
    {2, 11, 4, 64, 264, 0, 1},   {1, 5, 1, 2, 2, 0, 0},
};

INSTANTIATE_TEST_SUITE_P(Cases, RopeKernelTest, ::testing::ValuesIn(kCases));

TEST(RopeKernelArgsTest, RejectsBadArgumentsWithoutLaunching) {
  bf16* x = reinterpret_cast<bf16*>(uintptr_t{256});
  float* f = reinterpret_cast<float*>(uintptr_t{256});
  const Status odd = RopeForward(x, 28, f, f, 1, 4, 4, 7, nullptr);
  EXPECT_EQ(odd.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(odd.ToString().find("RopeForward: head_dim=7"), std::string::npos) << odd.ToString();
  const Status narrow = RopeBackward(x, 100, f, f, 1, 4, 4, 64, nullptr);
  EXPECT_EQ(narrow.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(narrow.ToString().find("RopeBackward: ld=100"), std::string::npos) << narrow.ToString();
  EXPECT_EQ(RopeForward(nullptr, 256, f, f, 1, 4, 4, 64, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RopeForward(x, 256, nullptr, f, 1, 4, 4, 64, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RopeForward(x, 256, f, nullptr, 1, 4, 4, 64, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RopeForward(x, 256, f, f, -1, 4, 4, 64, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RopeForward(x, 256, f, f, 1, 4, 0, 64, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(RopeForward(nullptr, 256, nullptr, nullptr, 0, 4, 4, 64, nullptr).ok());
}

}  // namespace
}  // namespace dyt::cuda
