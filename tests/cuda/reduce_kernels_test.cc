// The deterministic fp64 reductions (SumDevice, SumSquaresDevice) against the CPU (dyt::GradNorm
// squared, and a plain double sum), bit-identical across runs, at n = 0, 1, odd and large
// sizes, with aligned and misaligned inputs.
#include "trainer/cuda/reduce_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/optim/adamw.h"

namespace dyt::cuda {
namespace {

using test::DevArray;

// The two reductions of x on the GPU: {sum, sum of squares}, each run twice and checked to
// give the same bits.
struct Sums {
  double sum = 0;
  double squares = 0;
};

Sums GpuSums(const std::vector<float>& x, size_t misalign) {
  const int64_t n = static_cast<int64_t>(x.size());
  DevArray<float> x_dev(x, misalign);
  DevArray<double> out(2);
  const size_t scratch_bytes = ReduceScratchBytes(n);
  DevArray<uint8_t> scratch(scratch_bytes);
  DYT_TEST_CUDA(cudaMemset(scratch.get(), 0xFF, scratch_bytes));
  Sums first;
  for (int run = 0; run < 2; ++run) {
    DYT_TEST_CUDA(cudaMemset(out.get(), 0xFF, 2 * sizeof(double)));
    const Status s1 = SumDevice(out.get(), x_dev.get(), n, scratch.get(), scratch_bytes, nullptr);
    EXPECT_TRUE(s1.ok()) << s1.ToString();
    const Status s2 =
        SumSquaresDevice(out.get() + 1, x_dev.get(), n, scratch.get(), scratch_bytes, nullptr);
    EXPECT_TRUE(s2.ok()) << s2.ToString();
    DYT_TEST_CUDA(cudaDeviceSynchronize());
    double host[2];
    DYT_TEST_CUDA(cudaMemcpy(host, out.get(), sizeof(host), cudaMemcpyDeviceToHost));
    if (run == 0) {
      first = {host[0], host[1]};
    } else {
      // Bit-identical: compare the representations, not the values (NaN != NaN).
      EXPECT_EQ(std::memcmp(&host[0], &first.sum, sizeof(double)), 0)
          << "sum differs between runs: " << host[0] << " vs " << first.sum;
      EXPECT_EQ(std::memcmp(&host[1], &first.squares, sizeof(double)), 0)
          << "sum of squares differs between runs: " << host[1] << " vs " << first.squares;
    }
  }
  return first;
}

void CheckSize(int64_t n, size_t misalign, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " misalign=" << misalign << " seed=" << seed
                                  << " scratch=" << ReduceScratchBytes(n) << " bytes");
  std::mt19937_64 rng(seed);
  std::vector<float> x = test::RandomNonZero(rng, static_cast<size_t>(n), 1e-3f, 3.f);
  const Sums got = GpuSums(x, misalign);

  const double norm = GradNorm(x.data(), n);
  const double want_sq = norm * norm;
  double want_sum = 0, abs_sum = 0;
  for (float v : x) {
    want_sum += v;
    abs_sum += std::fabs(v);
  }
  if (n == 0) {
    EXPECT_EQ(got.squares, 0.0);
    EXPECT_EQ(got.sum, 0.0);
    return;
  }
  const double sq_err = std::fabs(got.squares - want_sq) / want_sq;
  EXPECT_LE(sq_err, 1e-12) << "sum of squares: gpu " << got.squares << " cpu " << want_sq;
  // The plain sum cancels; measure its error against the sum of magnitudes.
  const double sum_err = std::fabs(got.sum - want_sum) / abs_sum;
  EXPECT_LE(sum_err, 1e-12) << "sum: gpu " << got.sum << " cpu " << want_sum;
}

TEST(ReduceKernelsTest, MatchesCpuAndIsBitIdentical) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{1000}, int64_t{8193},
                    int64_t{1000003}, int64_t{9000001}}) {
    CheckSize(n, 0, seed + static_cast<uint64_t>(n));
    CheckSize(n, 1, seed + static_cast<uint64_t>(n) + 1);
  }
}

TEST(ReduceKernelsTest, ExactOnIntegers) {
  DYT_REQUIRE_GPU();
  // Small integers: every partial sum is exact in double, so the result is exact.
  const int64_t n = 1000003;
  std::vector<float> x(n);
  double want_sum = 0, want_sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 7) - 3.f;
    want_sum += x[i];
    want_sq += double(x[i]) * x[i];
  }
  const Sums got = GpuSums(x, 0);
  EXPECT_EQ(got.sum, want_sum);
  EXPECT_EQ(got.squares, want_sq);
}

TEST(ReduceKernelsTest, ScratchDependsOnlyOnSize) {
  EXPECT_EQ(ReduceScratchBytes(0), 0u);
  EXPECT_EQ(ReduceScratchBytes(1), sizeof(double));
  EXPECT_LE(ReduceScratchBytes(int64_t{1} << 40), 1024 * sizeof(double));
  EXPECT_GE(ReduceScratchBytes(1000003), sizeof(double));
}

TEST(ReduceKernelsTest, RejectsBadArgumentsWithoutLaunching) {
  double* out = reinterpret_cast<double*>(uintptr_t{256});
  float* x = reinterpret_cast<float*>(uintptr_t{256});
  void* scratch = reinterpret_cast<void*>(uintptr_t{512});
  const size_t need = ReduceScratchBytes(100000);
  EXPECT_EQ(SumDevice(out, x, -1, scratch, need, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SumDevice(nullptr, x, 10, scratch, need, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SumSquaresDevice(out, nullptr, 10, scratch, need, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SumSquaresDevice(out, x, 100000, scratch, need - 1, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SumSquaresDevice(out, x, 100000, nullptr, need, nullptr).code(),
            StatusCode::kInvalidArgument);
  const Status st =
      SumSquaresDevice(out, x, 100000, reinterpret_cast<void*>(uintptr_t{516}), need, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.ToString().find("SumSquaresDevice"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace dyt::cuda
