// The cuBLASLt Linear products (trainer/cuda/gemm.h) against their CPU twins
// (dyt::cpu::LinearForward / LinearBackward, fp32 OpenBLAS) on the same bf16-rounded inputs,
// and CastFp32ToBf16 bit for bit against the host's round-to-nearest-even.
// Tolerances: bf16 outputs err <= 1e-2 (test_util.h); the fp32 weight gradient err <= 2e-3.
#include "trainer/cuda/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cpu/kernels.h"

namespace dyt::cuda {
namespace {

using test::DevArray;
using test::RandomNonZero;
using test::RelL2;
using test::Rounded;

constexpr double kWeightGradTol = 2e-3;

struct Shape {
  int64_t N;
  int in;
  int out;
};

void PrintTo(const Shape& s, std::ostream* os) {
  *os << "N" << s.N << "_in" << s.in << "_out" << s.out;
}

std::string ShapeName(const ::testing::TestParamInfo<Shape>& info) {
  std::string name = "N";
  name += std::to_string(info.param.N);
  name += "_in";
  name += std::to_string(info.param.in);
  name += "_out";
  name += std::to_string(info.param.out);
  return name;
}

void ExpectClose(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                 double tol) {
  const int64_t bad = test::FirstNonFinite(got);
  EXPECT_EQ(bad, -1) << what << ": element " << bad << " is not finite (never written?)";
  const double err = RelL2(got, want);
  EXPECT_LE(err, tol) << what << ": ||gpu - cpu|| / ||cpu|| = " << err;
}

// A non-blocking stream, destroyed at scope exit.
class Stream {
 public:
  Stream() { DYT_TEST_CUDA(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void Sync() const { DYT_TEST_CUDA(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

// The inputs of one Linear layer, bf16-rounded on the host, with device copies.
struct LinearInputs {
  LinearInputs(const Shape& s, std::mt19937_64& rng, size_t misalign)
      : x(Rounded<bf16>(RandomNonZero(rng, static_cast<size_t>(s.N) * s.in, 0.05f, 1.f))),
        w(Rounded<bf16>(RandomNonZero(rng, static_cast<size_t>(s.out) * s.in, 0.01f, 0.1f))),
        dy(Rounded<bf16>(RandomNonZero(rng, static_cast<size_t>(s.N) * s.out, 0.05f, 1.f))),
        d_x(x, misalign),
        d_w(w, misalign),
        d_dy(dy, misalign) {}

  std::vector<float> x, w, dy;
  DevArray<bf16> d_x, d_w, d_dy;
};

// All three products of one shape, overwriting and accumulating, against the CPU twin.
void CheckAll(const Shape& s, size_t misalign, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << s.N << " in=" << s.in << " out=" << s.out
                                  << " misalign=" << misalign << " seed=" << seed);
  std::mt19937_64 rng(seed);
  StatusOr<Gemm> gemm = Gemm::Create();
  DYT_ASSERT_OK(gemm.status());
  Stream stream;
  LinearInputs in(s, rng, misalign);
  const size_t nx = static_cast<size_t>(s.N) * s.in;
  const size_t ny = static_cast<size_t>(s.N) * s.out;
  const size_t nw = static_cast<size_t>(s.out) * s.in;

  // Forward.
  std::vector<float> y_cpu(ny);
  cpu::LinearForward(y_cpu.data(), in.x.data(), in.w.data(), s.N, s.in, s.out);
  DevArray<bf16> y(ny, misalign);
  y.Poison();
  DYT_ASSERT_OK(gemm->Forward(y.get(), in.d_x.get(), in.d_w.get(), s.N, s.in, s.out, stream.get()));
  stream.Sync();
  ExpectClose("Forward y", y.Download(), y_cpu, test::kBf16Tol);

  // BackwardData overwriting, and accumulating onto a non-zero dx. The CPU twin's dw is
  // computed along (from zero) and checked below as the overwriting BackwardWeight.
  std::vector<float> dx_cpu(nx);
  std::vector<float> dw_cpu(nw, 0.f);
  cpu::LinearBackward(dx_cpu.data(), dw_cpu.data(), in.dy.data(), in.x.data(), in.w.data(), s.N,
                      s.in, s.out, /*accumulate_dx=*/false);
  DevArray<bf16> dx(nx, misalign);
  dx.Poison();
  DYT_ASSERT_OK(gemm->BackwardData(dx.get(), in.d_dy.get(), in.d_w.get(), s.N, s.in, s.out,
                                   /*accumulate=*/false, stream.get()));
  stream.Sync();
  ExpectClose("BackwardData dx", dx.Download(), dx_cpu, test::kBf16Tol);

  const std::vector<float> dx0 = Rounded<bf16>(RandomNonZero(rng, nx, 0.05f, 1.f));
  std::vector<float> dx_acc_cpu = dx0;
  std::vector<float> dw_scratch(nw, 0.f);
  cpu::LinearBackward(dx_acc_cpu.data(), dw_scratch.data(), in.dy.data(), in.x.data(), in.w.data(),
                      s.N, s.in, s.out, /*accumulate_dx=*/true);
  dx.Upload(dx0);
  DYT_ASSERT_OK(gemm->BackwardData(dx.get(), in.d_dy.get(), in.d_w.get(), s.N, s.in, s.out,
                                   /*accumulate=*/true, stream.get()));
  stream.Sync();
  ExpectClose("BackwardData dx += ", dx.Download(), dx_acc_cpu, test::kBf16Tol);

  // BackwardWeight overwriting (poisoned output), then accumulating onto a non-zero dW.
  DevArray<float> dw(nw, misalign);
  dw.Poison();
  DYT_ASSERT_OK(gemm->BackwardWeight(dw.get(), in.d_dy.get(), in.d_x.get(), s.N, s.in, s.out,
                                     /*accumulate=*/false, stream.get()));
  stream.Sync();
  ExpectClose("BackwardWeight dW", dw.Download(), dw_cpu, kWeightGradTol);

  const std::vector<float> dw0 = RandomNonZero(rng, nw, 0.1f, 2.f);
  std::vector<float> dw_acc_cpu = dw0;
  std::vector<float> dx_scratch(nx);
  cpu::LinearBackward(dx_scratch.data(), dw_acc_cpu.data(), in.dy.data(), in.x.data(), in.w.data(),
                      s.N, s.in, s.out);
  dw.Upload(dw0);
  DYT_ASSERT_OK(gemm->BackwardWeight(dw.get(), in.d_dy.get(), in.d_x.get(), s.N, s.in, s.out,
                                     /*accumulate=*/true, stream.get()));
  stream.Sync();
  ExpectClose("BackwardWeight dW += ", dw.Download(), dw_acc_cpu, kWeightGradTol);
}

class GemmShapeTest : public ::testing::TestWithParam<Shape> {};

TEST_P(GemmShapeTest, MatchesCpuTwin) {
  DYT_REQUIRE_GPU();
  CheckAll(GetParam(), /*misalign=*/0, test::TestSeed());
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmShapeTest,
                         ::testing::Values(Shape{7, 33, 65}, Shape{512, 768, 2048},
                                           Shape{1000, 1001, 999}, Shape{1, 768, 768},
                                           Shape{3000, 64, 8}),
                         ShapeName);

// Pointers one element past an allocation (2-byte aligned bf16, 4-byte aligned fp32): the
// heuristic must be told and pick an algorithm that reads them.
TEST(GemmTest, MisalignedPointers) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  CheckAll(Shape{7, 33, 65}, /*misalign=*/1, seed);
  CheckAll(Shape{96, 256, 128}, /*misalign=*/1, seed);
}

// A Llama-sized MLP up-projection, forward only (the CPU twin is slow at this size).
TEST(GemmTest, LargeForward) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  const Shape s{4096, 2048, 5632};
  SCOPED_TRACE(testing::Message() << "N=" << s.N << " in=" << s.in << " out=" << s.out
                                  << " seed=" << seed);
  std::mt19937_64 rng(seed);
  StatusOr<Gemm> gemm = Gemm::Create();
  DYT_ASSERT_OK(gemm.status());
  Stream stream;
  const std::vector<float> x =
      Rounded<bf16>(RandomNonZero(rng, static_cast<size_t>(s.N) * s.in, 0.05f, 1.f));
  const std::vector<float> w =
      Rounded<bf16>(RandomNonZero(rng, static_cast<size_t>(s.out) * s.in, 0.01f, 0.1f));
  std::vector<float> y_cpu(static_cast<size_t>(s.N) * s.out);
  cpu::LinearForward(y_cpu.data(), x.data(), w.data(), s.N, s.in, s.out);
  DevArray<bf16> d_x(x), d_w(w), y(y_cpu.size());
  y.Poison();
  DYT_ASSERT_OK(gemm->Forward(y.get(), d_x.get(), d_w.get(), s.N, s.in, s.out, stream.get()));
  stream.Sync();
  ExpectClose("Forward y", y.Download(), y_cpu, test::kBf16Tol);
}

// One plan per problem, reused; repeated calls give the same bits (no split-K atomics).
TEST(GemmTest, PlanCacheAndDeterminism) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  SCOPED_TRACE(testing::Message() << "seed=" << seed);
  std::mt19937_64 rng(seed);
  StatusOr<Gemm> gemm = Gemm::Create();
  DYT_ASSERT_OK(gemm.status());
  Stream stream;
  const Shape s{4096, 768, 512};  // large k = N for the weight gradient: split-K territory
  LinearInputs in(s, rng, 0);
  DevArray<float> dw1(static_cast<size_t>(s.out) * s.in), dw2(dw1.size());
  EXPECT_EQ(gemm->cached_plans(), 0u);
  DYT_ASSERT_OK(gemm->BackwardWeight(dw1.get(), in.d_dy.get(), in.d_x.get(), s.N, s.in, s.out,
                                     false, stream.get()));
  EXPECT_EQ(gemm->cached_plans(), 1u);
  DYT_ASSERT_OK(gemm->BackwardWeight(dw2.get(), in.d_dy.get(), in.d_x.get(), s.N, s.in, s.out,
                                     false, stream.get()));
  EXPECT_EQ(gemm->cached_plans(), 1u);
  stream.Sync();
  EXPECT_EQ(dw1.Bytes(), dw2.Bytes()) << "BackwardWeight is not bitwise reproducible";

  DevArray<bf16> y1(static_cast<size_t>(s.N) * s.out), y2(y1.size());
  DYT_ASSERT_OK(
      gemm->Forward(y1.get(), in.d_x.get(), in.d_w.get(), s.N, s.in, s.out, stream.get()));
  DYT_ASSERT_OK(
      gemm->Forward(y2.get(), in.d_x.get(), in.d_w.get(), s.N, s.in, s.out, stream.get()));
  EXPECT_EQ(gemm->cached_plans(), 2u);
  stream.Sync();
  EXPECT_EQ(y1.Bytes(), y2.Bytes()) << "Forward is not bitwise reproducible";

  // A moved-from Gemm's plans move with it.
  Gemm moved = std::move(*gemm);
  EXPECT_EQ(moved.cached_plans(), 2u);
}

TEST(GemmTest, EmptyBatchAndBadArguments) {
  DYT_REQUIRE_GPU();
  StatusOr<Gemm> gemm = Gemm::Create();
  DYT_ASSERT_OK(gemm.status());
  Stream stream;
  // N = 0: nothing to compute; an overwriting weight gradient is zero.
  DevArray<float> dw(std::vector<float>(12, 1.f));
  DYT_ASSERT_OK(gemm->Forward(nullptr, nullptr, nullptr, 0, 3, 4, stream.get()));
  DYT_ASSERT_OK(gemm->BackwardWeight(dw.get(), nullptr, nullptr, 0, 3, 4, true, stream.get()));
  stream.Sync();
  EXPECT_EQ(dw.Download(), std::vector<float>(12, 1.f));
  DYT_ASSERT_OK(gemm->BackwardWeight(dw.get(), nullptr, nullptr, 0, 3, 4, false, stream.get()));
  stream.Sync();
  EXPECT_EQ(dw.Download(), std::vector<float>(12, 0.f));

  DevArray<bf16> a(12), b(12), c(12);
  const Status bad_dim = gemm->Forward(c.get(), a.get(), b.get(), 3, 0, 4, stream.get());
  EXPECT_EQ(bad_dim.code(), StatusCode::kInvalidArgument) << bad_dim.ToString();
  EXPECT_NE(bad_dim.message().find("Gemm::Forward(N=3, in=0, out=4)"), std::string::npos)
      << bad_dim.ToString();
  const Status null_ptr =
      gemm->BackwardData(nullptr, a.get(), b.get(), 3, 4, 4, false, stream.get());
  EXPECT_EQ(null_ptr.code(), StatusCode::kInvalidArgument) << null_ptr.ToString();
  EXPECT_EQ(gemm->cached_plans(), 0u);
}

// ---- CastFp32ToBf16 --------------------------------------------------------------------------

void CheckCast(size_t n, size_t src_misalign, size_t dst_misalign, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " src_misalign=" << src_misalign
                                  << " dst_misalign=" << dst_misalign << " seed=" << seed);
  std::mt19937_64 rng(seed);
  std::vector<float> src = RandomNonZero(rng, n, 1e-3f, 10.f);
  // Values that exercise the rounding: ties to even, overflow to infinity, subnormals, NaN.
  const float specials[] = {1.00390625f,  // exactly halfway between two bf16: rounds to even
                            1.01171875f,  // halfway, rounds up to even
                            3.4e38f,      // rounds to +inf
                            -1e-40f,      // subnormal
                            0.f,
                            -0.f,
                            std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()};
  for (size_t i = 0; i < std::size(specials) && i < n; ++i) src[(i * 7919) % n] = specials[i];
  DevArray<float> d_src(src, src_misalign);
  DevArray<bf16> dst(n, dst_misalign);
  dst.Poison();
  DYT_ASSERT_OK(CastFp32ToBf16(dst.get(), d_src.get(), static_cast<int64_t>(n), nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  const std::vector<uint8_t> bytes = dst.Bytes();
  int mismatches = 0;
  for (size_t i = 0; i < n && mismatches < 5; ++i) {
    const uint16_t got = static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    const uint16_t want = test::FloatToBf16Bits(src[i]);
    const bool ok = std::isnan(src[i]) ? std::isnan(test::Bf16BitsToFloat(got)) : got == want;
    if (!ok) {
      ++mismatches;
      ADD_FAILURE() << "element " << i << " = " << src[i] << ": got bf16 bits " << got << ", want "
                    << want;
    }
  }
}

TEST(CastFp32ToBf16Test, MatchesHostRounding) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{1001}, size_t{768 * 2048 + 5}}) {
    CheckCast(n, 0, 0, seed);  // vector path (and its scalar tail)
    CheckCast(n, 1, 0, seed);  // misaligned source: scalar path
    CheckCast(n, 0, 3, seed);  // misaligned destination
  }
}

TEST(CastFp32ToBf16Test, EmptyAndBadArguments) {
  DYT_REQUIRE_GPU();
  DYT_ASSERT_OK(CastFp32ToBf16(nullptr, nullptr, 0, nullptr));
  EXPECT_EQ(CastFp32ToBf16(nullptr, nullptr, -1, nullptr).code(), StatusCode::kInvalidArgument);
  DevArray<float> src(4);
  EXPECT_EQ(CastFp32ToBf16(nullptr, src.get(), 4, nullptr).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dyt::cuda
