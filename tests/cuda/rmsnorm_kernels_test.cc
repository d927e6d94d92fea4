// The RMSNorm CUDA kernels against their CPU twins (dyt::cpu::RmsNormForward / Backward), on
// random non-zero inputs, odd sizes, both residual types, in-place and misaligned variants.
// Tolerances: see test_util.h.
#include "trainer/cuda/rmsnorm_kernels.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cpu/kernels.h"

namespace dyt::cuda {
namespace {

using test::DevArray;
using test::RandomNonZero;
using test::RandomPositive;
using test::RelL2;
using test::Rounded;

constexpr float kEps = 1e-5f;

using Size = test::Rows;

// 8192 and 12288 take more than one vector per thread (forward) and, for 12288, the backward's
// scalar path; 77 and 1001 the scalar path everywhere.
const Size kSizes[] = {{1, 768}, {7, 1000},  {3000, 4096}, {33, 768},
                       {5, 77},  {33, 1001}, {9, 8192},    {3, 12288}};

void ExpectClose(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                 double tol) {
  const int64_t bad = test::FirstNonFinite(got);
  EXPECT_EQ(bad, -1) << what << ": element " << bad << " is not finite (never written?)";
  const double err = RelL2(got, want);
  EXPECT_LE(err, tol) << what << ": ||gpu - cpu|| / ||cpu|| = " << err;
}

struct FwdCase {
  bool residual;
  bool in_place;
  bool rstd;  // rstd requested (it may be null)
  size_t misalign;
};

template <typename R>
void CheckForward(Size s, const FwdCase& c, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D << " residual "
                                  << test::TypeName<R>() << (c.residual ? " +d" : "")
                                  << (c.in_place ? " in-place" : "") << (c.rstd ? "" : " no-rstd")
                                  << " misalign=" << c.misalign << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t n = static_cast<size_t>(s.N) * s.D;
  const std::vector<float> r = Rounded<R>(RandomNonZero(rng, n, 0.05f, 2.f));
  const std::vector<float> d = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
  const std::vector<float> w = RandomNonZero(rng, s.D, 0.5f, 1.5f);

  std::vector<float> x = r;
  if (c.residual) {
    cpu::Add(x.data(), r.data(), d.data(), static_cast<int64_t>(n));
    x = Rounded<R>(x);
  }
  std::vector<float> y_cpu(n), rstd_cpu(s.N);
  cpu::RmsNormForward(y_cpu.data(), rstd_cpu.data(), x.data(), w.data(), kEps, s.N, s.D);

  DevArray<R> r_dev(r, c.misalign), r_out_dev(n, c.misalign);
  DevArray<bf16> d_dev(d, c.misalign), y_dev(n, c.misalign);
  DevArray<float> w_dev(w), rstd_dev(s.N);
  y_dev.Poison();
  r_out_dev.Poison();
  rstd_dev.Poison();
  R* r_out = c.in_place ? r_dev.get() : r_out_dev.get();
  float* rstd = c.rstd ? rstd_dev.get() : nullptr;
  if (c.residual) {
    DYT_ASSERT_OK(ResidualRmsNormForward(r_out, y_dev.get(), rstd, r_dev.get(), d_dev.get(),
                                         w_dev.get(), kEps, s.N, s.D, nullptr));
  } else {
    DYT_ASSERT_OK(
        RmsNormForward(y_dev.get(), rstd, r_dev.get(), w_dev.get(), kEps, s.N, s.D, nullptr));
  }
  DYT_TEST_CUDA(cudaDeviceSynchronize());

  ExpectClose("y", y_dev.Download(), y_cpu, test::kBf16Tol);
  if (c.rstd) ExpectClose("rstd", rstd_dev.Download(), rstd_cpu, test::kRstdTol);
  if (c.residual) {
    ExpectClose("r_out", c.in_place ? r_dev.Download() : r_out_dev.Download(), x, 0.0);
  }
}

class RmsNormForwardTest : public ::testing::TestWithParam<Size> {};

TEST_P(RmsNormForwardTest, MatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  CheckForward<bf16>(GetParam(), {false, false, true, 0}, seed);
  CheckForward<float>(GetParam(), {false, false, true, 0}, seed + 1);
  CheckForward<bf16>(GetParam(), {false, false, false, 0}, seed + 2);
}

TEST_P(RmsNormForwardTest, ResidualAddMatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  CheckForward<bf16>(GetParam(), {true, false, true, 0}, seed);
  CheckForward<float>(GetParam(), {true, false, true, 0}, seed + 1);
  CheckForward<bf16>(GetParam(), {true, true, true, 0}, seed + 2);
  CheckForward<float>(GetParam(), {true, true, true, 1}, seed + 3);
  CheckForward<bf16>(GetParam(), {true, false, true, 1}, seed + 4);
}

INSTANTIATE_TEST_SUITE_P(Sizes, RmsNormForwardTest, ::testing::ValuesIn(kSizes), test::RowsName);

struct BwdCase {
  bool dr;
  bool in_place;  // dx == dr
  size_t misalign;
};

template <typename R>
void CheckBackward(Size s, const BwdCase& c, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D << " x " << test::TypeName<R>()
                                  << (c.dr ? " +dr" : "") << (c.in_place ? " in-place" : "")
                                  << " misalign=" << c.misalign << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t n = static_cast<size_t>(s.N) * s.D;
  const std::vector<float> dy = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
  const std::vector<float> x = Rounded<R>(RandomNonZero(rng, n, 0.05f, 2.f));
  const std::vector<float> dr = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
  const std::vector<float> w = RandomNonZero(rng, s.D, 0.5f, 1.5f);
  const std::vector<float> dw0 = RandomNonZero(rng, s.D, 0.1f, 1.f);

  std::vector<float> y(n), rstd(s.N), dx_cpu(n), dw_cpu = dw0;
  cpu::RmsNormForward(y.data(), rstd.data(), x.data(), w.data(), kEps, s.N, s.D);
  cpu::RmsNormBackward(dx_cpu.data(), dw_cpu.data(), dy.data(), x.data(), rstd.data(), w.data(),
                       s.N, s.D);
  if (c.dr) cpu::AddInPlace(dx_cpu.data(), dr.data(), static_cast<int64_t>(n));

  DevArray<bf16> dy_dev(dy, c.misalign), dr_dev(dr, c.misalign), dx_dev(n, c.misalign);
  DevArray<R> x_dev(x, c.misalign);
  DevArray<float> rstd_dev(rstd), w_dev(w), dw_dev(dw0);
  const size_t scratch_bytes = RmsNormBackwardScratchBytes(s.N, s.D);
  DevArray<uint8_t> scratch(scratch_bytes);
  DYT_TEST_CUDA(cudaMemset(scratch.get(), 0xFF, scratch_bytes));
  dx_dev.Poison();
  bf16* dx = c.in_place ? dr_dev.get() : dx_dev.get();
  DYT_ASSERT_OK(RmsNormBackward(dx, dw_dev.get(), dy_dev.get(), x_dev.get(), rstd_dev.get(),
                                w_dev.get(), c.dr ? dr_dev.get() : nullptr, s.N, s.D, scratch.get(),
                                scratch_bytes, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());

  ExpectClose("dx", c.in_place ? dr_dev.Download() : dx_dev.Download(), dx_cpu, test::kBf16Tol);
  std::vector<float> dw_gpu = dw_dev.Download();
  for (int i = 0; i < s.D; ++i) {
    dw_gpu[i] -= dw0[i];
    dw_cpu[i] -= dw0[i];
  }
  ExpectClose("dw", dw_gpu, dw_cpu, test::kFp32Tol);
}

class RmsNormBackwardTest : public ::testing::TestWithParam<Size> {};

TEST_P(RmsNormBackwardTest, MatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  CheckBackward<bf16>(GetParam(), {true, false, 0}, seed);
  CheckBackward<bf16>(GetParam(), {false, false, 0}, seed + 1);
  CheckBackward<float>(GetParam(), {true, false, 0}, seed + 2);
  CheckBackward<bf16>(GetParam(), {true, true, 0}, seed + 3);
  CheckBackward<bf16>(GetParam(), {true, false, 1}, seed + 4);
  CheckBackward<float>(GetParam(), {true, true, 1}, seed + 5);
}

INSTANTIATE_TEST_SUITE_P(Sizes, RmsNormBackwardTest, ::testing::ValuesIn(kSizes), test::RowsName);

TEST(RmsNormBackwardDeterminismTest, BitIdenticalAcrossRuns) {
  DYT_REQUIRE_GPU();
  for (const Size s : {Size{3000, 4096}, Size{33, 1001}}) {
    const uint64_t seed = test::TestSeed();
    SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D << " seed=" << seed);
    std::mt19937_64 rng(seed);
    const size_t n = static_cast<size_t>(s.N) * s.D;
    DevArray<bf16> dy(RandomNonZero(rng, n, 0.05f, 1.f)), x(RandomNonZero(rng, n, 0.05f, 2.f));
    DevArray<float> rstd(RandomPositive(rng, s.N, 0.5f, 2.f)),
        w(RandomNonZero(rng, s.D, 0.5f, 1.5f));
    const std::vector<float> dw0 = RandomNonZero(rng, s.D, 0.1f, 1.f);
    const size_t scratch_bytes = RmsNormBackwardScratchBytes(s.N, s.D);
    DevArray<uint8_t> scratch(scratch_bytes);
    std::vector<uint8_t> first_dx, first_dw;
    for (int run = 0; run < 2; ++run) {
      DevArray<bf16> dx(n);
      DevArray<float> dw(dw0);
      DYT_ASSERT_OK(RmsNormBackward(dx.get(), dw.get(), dy.get(), x.get(), rstd.get(), w.get(),
                                    nullptr, s.N, s.D, scratch.get(), scratch_bytes, nullptr));
      DYT_TEST_CUDA(cudaDeviceSynchronize());
      if (run == 0) {
        first_dx = dx.Bytes();
        first_dw = dw.Bytes();
      } else {
        EXPECT_EQ(dx.Bytes(), first_dx);
        EXPECT_EQ(dw.Bytes(), first_dw);
      }
    }
  }
}

TEST(RmsNormKernelArgsTest, RejectsBadArgumentsWithoutLaunching) {
  bf16* p = reinterpret_cast<bf16*>(uintptr_t{256});
  float* f = reinterpret_cast<float*>(uintptr_t{256});
  EXPECT_EQ(RmsNormForward(p, f, p, nullptr, kEps, 4, 8, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormForward(p, f, p, f, kEps, 4, -3, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormBackward(p, f, p, p, nullptr, f, nullptr, 4, 8, f, 1 << 20, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormBackward(p, f, p, p, f, f, nullptr, 100, 768, f, 8, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(RmsNormForward(p, f, p, f, kEps, 0, 8, nullptr).ok());
}

}  // namespace
}  // namespace dyt::cuda
