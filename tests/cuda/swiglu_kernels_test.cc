// The SwiGLU kernels against their CPU twins (dyt::cpu::SwigluForward / SwigluBackward), on
// sizes that take the vector path, the scalar tail and the scalar path (misaligned pointers),
// with outputs aliasing inputs as the header allows, and inputs out in the sigmoid's tails.
// Tolerances: see test_util.h.
#include "trainer/cuda/swiglu_kernels.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cpu/kernels.h"

namespace dyt::cuda {
namespace {

using test::DevArray;
using test::RelL2;
using test::Rounded;

void ExpectClose(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                 double tol) {
  const int64_t bad = test::FirstNonFinite(got);
  EXPECT_EQ(bad, -1) << what << ": element " << bad << " is not finite (never written?)";
  const double err = RelL2(got, want);
  EXPECT_LE(err, tol) << what << ": ||gpu - cpu|| / ||cpu|| = " << err;
}

// h1 mostly in [-8, 8], one element in 64 out in the tails (|h1| up to 120: e^-h1 overflows).
std::vector<float> GateInputs(std::mt19937_64& rng, size_t n) {
  std::vector<float> h1 = test::RandomNonZero(rng, n, 0.01f, 8.f);
  for (size_t i = 0; i < n; i += 64) h1[i] *= 15.f;
  return Rounded<bf16>(h1);
}

enum class Alias { kNone, kFirst, kSecond };  // output aliases h1 (dh1 = h1) / h3 (dh3 = h3)

void CheckForward(int64_t n, size_t misalign, Alias alias, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " misalign=" << misalign
                                  << " alias=" << static_cast<int>(alias) << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t un = static_cast<size_t>(n);
  const std::vector<float> h1 = GateInputs(rng, un);
  const std::vector<float> h3 = Rounded<bf16>(test::RandomNonZero(rng, un, 0.05f, 2.f));
  std::vector<float> g_cpu(un);
  cpu::SwigluForward(g_cpu.data(), h1.data(), h3.data(), n);

  DevArray<bf16> h1_dev(h1, misalign), h3_dev(h3, misalign), g_dev(un, misalign);
  g_dev.Poison();
  bf16* g = alias == Alias::kFirst    ? h1_dev.get()
            : alias == Alias::kSecond ? h3_dev.get()
                                      : g_dev.get();
  DYT_ASSERT_OK(SwigluForward(g, h1_dev.get(), h3_dev.get(), n, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  const std::vector<float> got = alias == Alias::kFirst    ? h1_dev.Download()
                                 : alias == Alias::kSecond ? h3_dev.Download()
                                                           : g_dev.Download();
  ExpectClose("g", got, g_cpu, test::kBf16Tol);
}

void CheckBackward(int64_t n, size_t misalign, bool alias, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " misalign=" << misalign
                                  << (alias ? " dh1=h1 dh3=h3" : "") << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t un = static_cast<size_t>(n);
  const std::vector<float> h1 = GateInputs(rng, un);
  const std::vector<float> h3 = Rounded<bf16>(test::RandomNonZero(rng, un, 0.05f, 2.f));
  const std::vector<float> dg = Rounded<bf16>(test::RandomNonZero(rng, un, 0.05f, 1.f));
  std::vector<float> dh1_cpu(un), dh3_cpu(un);
  cpu::SwigluBackward(dh1_cpu.data(), dh3_cpu.data(), dg.data(), h1.data(), h3.data(), n);

  DevArray<bf16> h1_dev(h1, misalign), h3_dev(h3, misalign), dg_dev(dg, misalign);
  DevArray<bf16> dh1_dev(un, misalign), dh3_dev(un, misalign);
  dh1_dev.Poison();
  dh3_dev.Poison();
  bf16* dh1 = alias ? h1_dev.get() : dh1_dev.get();
  bf16* dh3 = alias ? h3_dev.get() : dh3_dev.get();
  DYT_ASSERT_OK(SwigluBackward(dh1, dh3, dg_dev.get(), h1_dev.get(), h3_dev.get(), n, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  ExpectClose("dh1", alias ? h1_dev.Download() : dh1_dev.Download(), dh1_cpu, test::kBf16Tol);
  ExpectClose("dh3", alias ? h3_dev.Download() : dh3_dev.Download(), dh3_cpu, test::kBf16Tol);
}

const int64_t kCounts[] = {1, 7, 8, 1000, 12293, 1 << 20};

TEST(SwigluKernelTest, ForwardMatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const int64_t n : kCounts) {
    CheckForward(n, 0, Alias::kNone, seed);
    CheckForward(n, 1, Alias::kNone, seed + 1);
    CheckForward(n, 0, Alias::kFirst, seed + 2);
    CheckForward(n, 0, Alias::kSecond, seed + 3);
    CheckForward(n, 1, Alias::kFirst, seed + 4);
  }
}

TEST(SwigluKernelTest, BackwardMatchesCpu) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const int64_t n : kCounts) {
    CheckBackward(n, 0, false, seed);
    CheckBackward(n, 1, false, seed + 1);
    CheckBackward(n, 0, true, seed + 2);
    CheckBackward(n, 1, true, seed + 3);
  }
}

TEST(SwigluKernelTest, RejectsBadArgumentsWithoutLaunching) {
  bf16* p = reinterpret_cast<bf16*>(uintptr_t{256});
  bf16* q = reinterpret_cast<bf16*>(uintptr_t{512});
  EXPECT_EQ(SwigluForward(p, p, p, -1, nullptr).code(), StatusCode::kInvalidArgument);
  const Status null_h3 = SwigluForward(p, p, nullptr, 8, nullptr);
  EXPECT_EQ(null_h3.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(null_h3.ToString().find("SwigluForward: h3"), std::string::npos) << null_h3.ToString();
  EXPECT_EQ(SwigluBackward(p, q, nullptr, p, p, 8, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SwigluBackward(p, p, q, p, p, 8, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(SwigluForward(nullptr, nullptr, nullptr, 0, nullptr).ok());
}

}  // namespace
}  // namespace dyt::cuda
