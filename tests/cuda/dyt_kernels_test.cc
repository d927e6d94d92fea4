// The DyT CUDA kernels against their CPU twins (dyt::cpu::DytForward / DytBackward), on random
// non-zero inputs, odd sizes, both residual types, with and without beta, both tanh modes,
// in-place and misaligned (scalar-path) variants. Tolerances: see test_util.h.
#include "trainer/cuda/dyt_kernels.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <tuple>
#include <utility>
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

using Size = test::Rows;

// D = 768, 4096: model widths; 1000: a multiple of 8 that is not of 32 (idle lanes); 77, 1001:
// not multiples of 8 (scalar path). N = 1, 7, 33: partial row tiles; 3000: many tiles per block.
const Size kSizes[] = {{1, 768}, {7, 1000}, {3000, 4096}, {33, 768}, {5, 77}, {33, 1001}};

void ExpectClose(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                 double tol) {
  const int64_t bad = test::FirstNonFinite(got);
  EXPECT_EQ(bad, -1) << what << ": element " << bad << " is not finite (never written?)";
  const double err = RelL2(got, want);
  EXPECT_LE(err, tol) << what << ": ||gpu - cpu|| / ||cpu|| = " << err;
}

// The gradient increments a backward call added (after - before).
std::vector<float> Increment(const std::vector<float>& after, const std::vector<float>& before) {
  std::vector<float> inc(after.size());
  for (size_t i = 0; i < after.size(); ++i) inc[i] = after[i] - before[i];
  return inc;
}

struct FwdCase {
  bool residual;
  bool beta;
  TanhMode tanh_mode;
  bool in_place;    // r_out == r
  size_t misalign;  // elements of offset on the activation pointers (forces the scalar path)
};

template <typename R>
void CheckForward(Size s, const FwdCase& c, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D << " residual "
                                  << test::TypeName<R>() << (c.residual ? " +d" : "")
                                  << (c.beta ? " beta" : " no-beta")
                                  << (c.tanh_mode == TanhMode::kFast ? " fast-tanh" : "")
                                  << (c.in_place ? " in-place" : "") << " misalign=" << c.misalign
                                  << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t n = static_cast<size_t>(s.N) * s.D;
  const std::vector<float> r = Rounded<R>(RandomNonZero(rng, n, 0.05f, 2.f));
  const std::vector<float> d = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
  const float alpha = RandomPositive(rng, 1, 0.3f, 1.f)[0];
  const std::vector<float> gamma = RandomNonZero(rng, s.D, 0.5f, 1.5f);
  const std::vector<float> beta = RandomNonZero(rng, s.D, 0.05f, 0.5f);

  // CPU twin: the residual add rounded to the residual's type, then DyT of the rounded value.
  std::vector<float> x = r;
  if (c.residual) {
    cpu::Add(x.data(), r.data(), d.data(), static_cast<int64_t>(n));
    x = Rounded<R>(x);
  }
  std::vector<float> y_cpu(n), t_cpu(n);
  cpu::DytForward(y_cpu.data(), t_cpu.data(), x.data(), alpha, gamma.data(),
                  c.beta ? beta.data() : nullptr, s.N, s.D);

  DevArray<R> r_dev(r, c.misalign);
  DevArray<bf16> d_dev(d, c.misalign);
  DevArray<R> r_out_dev(n, c.misalign);
  DevArray<bf16> y_dev(n, c.misalign);
  DevArray<float> alpha_dev(std::vector<float>{alpha});
  DevArray<float> gamma_dev(gamma);
  DevArray<float> beta_dev(beta);
  y_dev.Poison();
  r_out_dev.Poison();
  R* r_out = c.in_place ? r_dev.get() : r_out_dev.get();
  const float* beta_ptr = c.beta ? beta_dev.get() : nullptr;
  if (c.residual) {
    DYT_ASSERT_OK(ResidualDytForward(r_out, y_dev.get(), r_dev.get(), d_dev.get(), alpha_dev.get(),
                                     gamma_dev.get(), beta_ptr, s.N, s.D, nullptr, c.tanh_mode));
  } else {
    DYT_ASSERT_OK(DytForward(y_dev.get(), r_dev.get(), alpha_dev.get(), gamma_dev.get(), beta_ptr,
                             s.N, s.D, nullptr, c.tanh_mode));
  }
  DYT_TEST_CUDA(cudaDeviceSynchronize());

  ExpectClose("y", y_dev.Download(), y_cpu, test::kBf16Tol);
  if (c.residual) {
    // The same fp32 sum rounded the same way: exact.
    ExpectClose("r_out", c.in_place ? r_dev.Download() : r_out_dev.Download(), x, 0.0);
  }
}

class DytForwardTest : public ::testing::TestWithParam<Size> {};

TEST_P(DytForwardTest, FirstLayerMatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (bool beta : {true, false}) {
    for (TanhMode mode : {TanhMode::kAccurate, TanhMode::kFast}) {
      CheckForward<bf16>(GetParam(), {false, beta, mode, false, 0}, seed);
      CheckForward<float>(GetParam(), {false, beta, mode, false, 0}, seed + 1);
    }
  }
}

TEST_P(DytForwardTest, ResidualAddMatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (bool beta : {true, false}) {
    for (TanhMode mode : {TanhMode::kAccurate, TanhMode::kFast}) {
      CheckForward<bf16>(GetParam(), {true, beta, mode, false, 0}, seed);
      CheckForward<float>(GetParam(), {true, beta, mode, false, 0}, seed + 1);
    }
  }
}

TEST_P(DytForwardTest, ResidualAddInPlaceAndMisaligned) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  CheckForward<bf16>(GetParam(), {true, true, TanhMode::kAccurate, true, 0}, seed);
  CheckForward<float>(GetParam(), {true, true, TanhMode::kAccurate, true, 0}, seed + 1);
  CheckForward<bf16>(GetParam(), {true, true, TanhMode::kAccurate, false, 1}, seed + 2);
  CheckForward<float>(GetParam(), {true, false, TanhMode::kAccurate, true, 1}, seed + 3);
}

INSTANTIATE_TEST_SUITE_P(Sizes, DytForwardTest, ::testing::ValuesIn(kSizes), test::RowsName);

struct BwdCase {
  bool beta;
  bool dr;        // a residual gradient flows in
  bool in_place;  // dx == dr
  TanhMode tanh_mode;
  size_t misalign;
};

template <typename R>
void CheckBackward(Size s, const BwdCase& c, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D << " x " << test::TypeName<R>()
                                  << (c.beta ? " dbeta" : " no-dbeta") << (c.dr ? " +dr" : "")
                                  << (c.in_place ? " in-place" : "")
                                  << (c.tanh_mode == TanhMode::kFast ? " fast-tanh" : "")
                                  << " misalign=" << c.misalign << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t n = static_cast<size_t>(s.N) * s.D;
  const std::vector<float> dy = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
  const std::vector<float> x = Rounded<R>(RandomNonZero(rng, n, 0.05f, 2.f));
  const std::vector<float> dr = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
  const float alpha = RandomPositive(rng, 1, 0.3f, 1.f)[0];
  const std::vector<float> gamma = RandomNonZero(rng, s.D, 0.5f, 1.5f);
  // Gradient buffers start non-zero: the kernels must add, not overwrite.
  const std::vector<float> dalpha0 = RandomNonZero(rng, 1, 0.1f, 1.f);
  const std::vector<float> dgamma0 = RandomNonZero(rng, s.D, 0.1f, 1.f);
  const std::vector<float> dbeta0 = RandomNonZero(rng, s.D, 0.1f, 1.f);

  std::vector<float> y(n), t(n), dx_cpu(n);
  std::vector<float> dalpha_cpu = dalpha0, dgamma_cpu = dgamma0, dbeta_cpu = dbeta0;
  cpu::DytForward(y.data(), t.data(), x.data(), alpha, gamma.data(), nullptr, s.N, s.D);
  cpu::DytBackward(dx_cpu.data(), dalpha_cpu.data(), dgamma_cpu.data(),
                   c.beta ? dbeta_cpu.data() : nullptr, dy.data(), x.data(), t.data(), alpha,
                   gamma.data(), s.N, s.D);
  if (c.dr) cpu::AddInPlace(dx_cpu.data(), dr.data(), static_cast<int64_t>(n));

  DevArray<bf16> dy_dev(dy, c.misalign);
  DevArray<R> x_dev(x, c.misalign);
  DevArray<bf16> dr_dev(dr, c.misalign);
  DevArray<bf16> dx_dev(n, c.misalign);
  DevArray<float> alpha_dev(std::vector<float>{alpha});
  DevArray<float> gamma_dev(gamma);
  DevArray<float> dalpha_dev(dalpha0), dgamma_dev(dgamma0), dbeta_dev(dbeta0);
  const size_t scratch_bytes = DytBackwardScratchBytes(s.N, s.D);
  DevArray<uint8_t> scratch(scratch_bytes);
  DYT_TEST_CUDA(cudaMemset(scratch.get(), 0xFF, scratch_bytes));  // stale partials must not leak
  dx_dev.Poison();
  bf16* dx = c.in_place ? dr_dev.get() : dx_dev.get();
  DYT_ASSERT_OK(DytBackward(dx, dalpha_dev.get(), dgamma_dev.get(),
                            c.beta ? dbeta_dev.get() : nullptr, dy_dev.get(), x_dev.get(),
                            c.dr ? dr_dev.get() : nullptr, alpha_dev.get(), gamma_dev.get(), s.N,
                            s.D, scratch.get(), scratch_bytes, nullptr, c.tanh_mode));
  DYT_TEST_CUDA(cudaDeviceSynchronize());

  const bool fast = c.tanh_mode == TanhMode::kFast;
  ExpectClose("dx", c.in_place ? dr_dev.Download() : dx_dev.Download(), dx_cpu, test::kBf16Tol);
  ExpectClose("dgamma", Increment(dgamma_dev.Download(), dgamma0), Increment(dgamma_cpu, dgamma0),
              fast ? test::kBf16Tol : test::kFp32Tol);
  if (c.beta) {
    ExpectClose("dbeta", Increment(dbeta_dev.Download(), dbeta0), Increment(dbeta_cpu, dbeta0),
                test::kFp32Tol);
  } else {
    EXPECT_EQ(dbeta_dev.Download(), dbeta0) << "dbeta was null, its buffer must be untouched";
  }
  ExpectClose("dalpha", Increment(dalpha_dev.Download(), dalpha0), Increment(dalpha_cpu, dalpha0),
              fast ? test::kBf16Tol : test::kScalarSumTol);
}

class DytBackwardTest : public ::testing::TestWithParam<Size> {};

TEST_P(DytBackwardTest, MatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (bool beta : {true, false}) {
    for (bool dr : {true, false}) {
      CheckBackward<bf16>(GetParam(), {beta, dr, false, TanhMode::kAccurate, 0}, seed);
      CheckBackward<float>(GetParam(), {beta, dr, false, TanhMode::kAccurate, 0}, seed + 1);
    }
  }
}

TEST_P(DytBackwardTest, FastTanhInPlaceAndMisaligned) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  CheckBackward<bf16>(GetParam(), {true, true, false, TanhMode::kFast, 0}, seed);
  CheckBackward<bf16>(GetParam(), {true, true, true, TanhMode::kAccurate, 0}, seed + 1);
  CheckBackward<float>(GetParam(), {true, true, true, TanhMode::kFast, 0}, seed + 2);
  CheckBackward<bf16>(GetParam(), {true, true, false, TanhMode::kAccurate, 1}, seed + 3);
}

INSTANTIATE_TEST_SUITE_P(Sizes, DytBackwardTest, ::testing::ValuesIn(kSizes), test::RowsName);

// Same inputs twice: every output bit-identical (no atomics, fixed reduction order).
TEST(DytBackwardDeterminismTest, BitIdenticalAcrossRuns) {
  DYT_REQUIRE_GPU();
  for (const Size s : {Size{3000, 4096}, Size{4097, 768}, Size{33, 1001}}) {
    const uint64_t seed = test::TestSeed();
    SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D << " seed=" << seed);
    std::mt19937_64 rng(seed);
    const size_t n = static_cast<size_t>(s.N) * s.D;
    DevArray<bf16> dy(RandomNonZero(rng, n, 0.05f, 1.f)), x(RandomNonZero(rng, n, 0.05f, 2.f));
    DevArray<float> alpha(std::vector<float>{0.7f}), gamma(RandomNonZero(rng, s.D, 0.5f, 1.5f));
    const std::vector<float> g0 = RandomNonZero(rng, s.D, 0.1f, 1.f);
    const size_t scratch_bytes = DytBackwardScratchBytes(s.N, s.D);
    DevArray<uint8_t> scratch(scratch_bytes);
    std::vector<uint8_t> first[4];
    for (int run = 0; run < 2; ++run) {
      DevArray<bf16> dx(n);
      DevArray<float> dalpha(std::vector<float>{0.5f}), dgamma(g0), dbeta(g0);
      DYT_ASSERT_OK(DytBackward(dx.get(), dalpha.get(), dgamma.get(), dbeta.get(), dy.get(),
                                x.get(), nullptr, alpha.get(), gamma.get(), s.N, s.D, scratch.get(),
                                scratch_bytes, nullptr));
      DYT_TEST_CUDA(cudaDeviceSynchronize());
      const std::vector<uint8_t> now[4] = {dx.Bytes(), dalpha.Bytes(), dgamma.Bytes(),
                                           dbeta.Bytes()};
      for (int i = 0; i < 4; ++i) {
        if (run == 0) {
          first[i] = now[i];
        } else {
          EXPECT_EQ(now[i], first[i]) << "output " << i << " (dx, dalpha, dgamma, dbeta) differs";
        }
      }
    }
  }
}

// Every compiled-in forward variant (tuning::DytForwardConfigs, with launch-time knobs) against
// the CPU twin, and the accurate ones bit for bit against the default (same math, only the
// schedule differs). Sizes: partial tiles, idle lanes (D = 1000); the grid capped at 3 row
// tiles makes every block walk several full tiles and then a partial one.
TEST(DytForwardTunedTest, EveryVariantMatchesCpuAndDefault) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const Size s : {Size{33, 768}, Size{7, 1000}, Size{1031, 768}, Size{515, 4096}}) {
    for (const bool residual : {false, true}) {
      SCOPED_TRACE(testing::Message() << "N=" << s.N << " D=" << s.D
                                      << (residual ? " residual" : "") << " seed=" << seed);
      std::mt19937_64 rng(seed + s.N);
      const size_t n = static_cast<size_t>(s.N) * s.D;
      const std::vector<float> r = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 2.f));
      const std::vector<float> d = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
      const float alpha = RandomPositive(rng, 1, 0.3f, 1.f)[0];
      const std::vector<float> gamma = RandomNonZero(rng, s.D, 0.5f, 1.5f);
      const std::vector<float> beta = RandomNonZero(rng, s.D, 0.05f, 0.5f);
      std::vector<float> x = r;
      if (residual) {
        cpu::Add(x.data(), r.data(), d.data(), static_cast<int64_t>(n));
        x = Rounded<bf16>(x);
      }
      std::vector<float> y_cpu(n), t_cpu(n);
      cpu::DytForward(y_cpu.data(), t_cpu.data(), x.data(), alpha, gamma.data(), beta.data(), s.N,
                      s.D);

      DevArray<bf16> r_dev(r), d_dev(d), r_out_dev(n), y_dev(n);
      DevArray<float> alpha_dev(std::vector<float>{alpha}), gamma_dev(gamma), beta_dev(beta);
      auto run = [&](const tuning::DytForwardConfig& c) {
        y_dev.Poison();
        r_out_dev.Poison();
        return residual
                   ? tuning::ResidualDytForwardTuned(c, r_out_dev.get(), y_dev.get(), r_dev.get(),
                                                     d_dev.get(), alpha_dev.get(), gamma_dev.get(),
                                                     beta_dev.get(), s.N, s.D, nullptr)
                   : tuning::DytForwardTuned(c, y_dev.get(), r_dev.get(), alpha_dev.get(),
                                             gamma_dev.get(), beta_dev.get(), s.N, s.D, nullptr);
      };
      DYT_ASSERT_OK(run(tuning::DefaultDytForwardConfig(TanhMode::kAccurate)));
      DYT_TEST_CUDA(cudaDeviceSynchronize());
      const std::vector<uint8_t> y_default = y_dev.Bytes();

      for (const tuning::DytForwardConfig& compiled : tuning::DytForwardConfigs(residual)) {
        for (const auto& [waves, block_x, max_grid_y] :
             {std::tuple{1, 0, 0}, std::tuple{0, 0, 0}, std::tuple{1, 32, 0},
              std::tuple{1, 0, 3}}) {
          tuning::DytForwardConfig c = compiled;
          c.waves = waves;
          c.block_x = block_x;
          c.max_grid_y = max_grid_y;
          SCOPED_TRACE(c.Name());
          DYT_ASSERT_OK(run(c));
          DYT_TEST_CUDA(cudaDeviceSynchronize());
          ExpectClose("y", y_dev.Download(), y_cpu, test::kBf16Tol);
          if (residual) ExpectClose("r_out", r_out_dev.Download(), x, 0.0);
          if (c.tanh != tuning::TanhImpl::kHardware) {
            EXPECT_TRUE(y_dev.Bytes() == y_default) << "accurate variant differs from the default";
          }
          if (c.legacy) break;  // the launch knobs do not apply
        }
      }
    }
  }
}

// Every compiled-in backward variant against the CPU twin; accurate ones give the default's dx
// bit for bit (the parameter gradients may be grouped differently: other grids).
TEST(DytBackwardTunedTest, EveryVariantMatchesCpuAndDefault) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const Size s : {Size{33, 768}, Size{7, 1000}, Size{4097, 768}, Size{515, 4096}}) {
    for (const bool with_dr : {true, false}) {
      SCOPED_TRACE(testing::Message()
                   << "N=" << s.N << " D=" << s.D << (with_dr ? " +dr" : "") << " seed=" << seed);
      std::mt19937_64 rng(seed + s.N);
      const size_t n = static_cast<size_t>(s.N) * s.D;
      const std::vector<float> dy = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
      const std::vector<float> x = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 2.f));
      const std::vector<float> dr = Rounded<bf16>(RandomNonZero(rng, n, 0.05f, 1.f));
      const float alpha = RandomPositive(rng, 1, 0.3f, 1.f)[0];
      const std::vector<float> gamma = RandomNonZero(rng, s.D, 0.5f, 1.5f);
      std::vector<float> y(n), t(n), dx_cpu(n), dalpha_cpu(1, 0.f), dgamma_cpu(s.D, 0.f),
          dbeta_cpu(s.D, 0.f);
      cpu::DytForward(y.data(), t.data(), x.data(), alpha, gamma.data(), nullptr, s.N, s.D);
      cpu::DytBackward(dx_cpu.data(), dalpha_cpu.data(), dgamma_cpu.data(), dbeta_cpu.data(),
                       dy.data(), x.data(), t.data(), alpha, gamma.data(), s.N, s.D);
      if (with_dr) cpu::AddInPlace(dx_cpu.data(), dr.data(), static_cast<int64_t>(n));

      DevArray<bf16> dy_dev(dy), x_dev(x), dr_dev(dr), dx_dev(n);
      DevArray<float> alpha_dev(std::vector<float>{alpha}), gamma_dev(gamma);
      DevArray<float> dalpha_dev(1), dgamma_dev(s.D), dbeta_dev(s.D);
      const size_t scratch_bytes = DytBackwardScratchBytes(s.N, s.D);
      DevArray<uint8_t> scratch(scratch_bytes);
      auto run = [&](const tuning::DytBackwardConfig& c) {
        dx_dev.Poison();
        DYT_TEST_CUDA(cudaMemset(dalpha_dev.get(), 0, sizeof(float)));
        DYT_TEST_CUDA(cudaMemset(dgamma_dev.get(), 0, s.D * sizeof(float)));
        DYT_TEST_CUDA(cudaMemset(dbeta_dev.get(), 0, s.D * sizeof(float)));
        return tuning::DytBackwardTuned(
            c, dx_dev.get(), dalpha_dev.get(), dgamma_dev.get(), dbeta_dev.get(), dy_dev.get(),
            x_dev.get(), with_dr ? dr_dev.get() : nullptr, alpha_dev.get(), gamma_dev.get(), s.N,
            s.D, scratch.get(), scratch_bytes, nullptr);
      };
      DYT_ASSERT_OK(run(tuning::DefaultDytBackwardConfig(TanhMode::kAccurate)));
      DYT_TEST_CUDA(cudaDeviceSynchronize());
      const std::vector<uint8_t> dx_default = dx_dev.Bytes();
      for (const tuning::DytBackwardConfig& c : tuning::DytBackwardConfigs()) {
        SCOPED_TRACE(c.Name());
        DYT_ASSERT_OK(run(c));
        DYT_TEST_CUDA(cudaDeviceSynchronize());
        const bool fast = c.tanh == tuning::TanhImpl::kHardware;
        ExpectClose("dx", dx_dev.Download(), dx_cpu, test::kBf16Tol);
        ExpectClose("dgamma", dgamma_dev.Download(), dgamma_cpu,
                    fast ? test::kBf16Tol : test::kFp32Tol);
        ExpectClose("dbeta", dbeta_dev.Download(), dbeta_cpu, test::kFp32Tol);
        ExpectClose("dalpha", dalpha_dev.Download(), dalpha_cpu,
                    fast ? test::kBf16Tol : test::kScalarSumTol);
        if (!fast) {
          EXPECT_TRUE(dx_dev.Bytes() == dx_default) << "dx differs from the default's";
        }
      }
    }
  }
}

// Argument checks happen before any CUDA call, so this runs without a GPU too.
TEST(DytKernelArgsTest, RejectsBadArgumentsWithoutLaunching) {
  bf16* p = reinterpret_cast<bf16*>(uintptr_t{256});
  float* f = reinterpret_cast<float*>(uintptr_t{256});
  EXPECT_EQ(DytForward(p, p, f, f, nullptr, 4, 0, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DytForward(p, p, f, f, nullptr, -1, 8, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DytForward(p, p, nullptr, f, nullptr, 4, 8, nullptr).code(),
            StatusCode::kInvalidArgument);
  const Status st = ResidualDytForward(p, p, p, nullptr, f, f, f, 4, 8, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("d is null"), std::string::npos) << st.ToString();
  const Status sc = DytBackward(p, f, f, f, p, p, nullptr, f, f, 100, 768, f, 4, nullptr);
  EXPECT_EQ(sc.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(sc.message().find("scratch"), std::string::npos) << sc.ToString();
  EXPECT_TRUE(DytForward(p, p, f, f, nullptr, 0, 8, nullptr).ok()) << "N = 0 is a no-op";
  // Tuning configs: a combination that is not compiled in, bad launch knobs, sweep variants
  // without beta (compiled with beta only).
  tuning::DytForwardConfig c;
  c.rows = 3;
  EXPECT_EQ(tuning::DytForwardTuned(c, p, p, f, f, f, 4, 8, nullptr).code(),
            StatusCode::kInvalidArgument);
  c = tuning::DefaultDytForwardConfig(TanhMode::kAccurate);
  c.block_x = 48;
  EXPECT_EQ(tuning::DytForwardTuned(c, p, p, f, f, f, 4, 8, nullptr).code(),
            StatusCode::kInvalidArgument);
  tuning::DytBackwardConfig bc;
  bc.rows = 3;
  EXPECT_EQ(tuning::DytBackwardTuned(bc, p, f, f, f, p, p, nullptr, f, f, 0, 8, f, 1 << 20, nullptr)
                .code(),
            StatusCode::kInvalidArgument);
  for (const tuning::DytBackwardConfig& k : tuning::DytBackwardConfigs()) {
    EXPECT_TRUE(
        tuning::DytBackwardTuned(k, p, f, f, f, p, p, nullptr, f, f, 0, 8, f, 1 << 20, nullptr)
            .ok())
        << k.Name();
  }
  for (const bool residual : {false, true}) {
    const auto& configs = tuning::DytForwardConfigs(residual);
    ASSERT_GE(configs.size(), 4u);
    EXPECT_EQ(configs[0], tuning::DefaultDytForwardConfig(TanhMode::kAccurate));
    EXPECT_EQ(configs[1], tuning::DefaultDytForwardConfig(TanhMode::kFast));
    for (const tuning::DytForwardConfig& k : configs) {
      SCOPED_TRACE(k.Name());
      EXPECT_TRUE(residual
                      ? tuning::ResidualDytForwardTuned(k, p, p, p, p, f, f, f, 0, 8, nullptr).ok()
                      : tuning::DytForwardTuned(k, p, p, f, f, f, 0, 8, nullptr).ok());
      const bool is_default = k == configs[0] || k == configs[1];
      if (!is_default && !k.legacy) {
        EXPECT_EQ(tuning::DytForwardTuned(k, p, p, f, f, nullptr, 0, 8, nullptr).code(),
                  StatusCode::kInvalidArgument);
      }
    }
  }
  EXPECT_GT(DytBackwardScratchBytes(16384, 4096), 0u);
}

}  // namespace
}  // namespace dyt::cuda
