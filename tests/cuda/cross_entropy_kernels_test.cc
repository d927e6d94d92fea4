// The fused cross-entropy kernels against their CPU twins (dyt::cpu::CrossEntropyForwardBackward
// / CrossEntropyForward, run one row at a time for per-row losses): V = 32768 (all rows 16-byte
// aligned, more rows than blocks), a misaligned logits pointer and odd V (7, 15, 97, 1001,
// 50257: rows with a scalar head and tail around the 16-byte body), V = 1 and 8; the
// forward-only kernel gives the same loss bits and leaves the logits untouched. Tolerances:
// see test_util.h; the loss (about log V, fp32 terms) to 1e-5.
#include "trainer/cuda/cross_entropy_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
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

constexpr double kLossTol = 1e-5;

struct CeCase {
  int64_t N;
  int V;
  size_t misalign;
};

void CheckCase(const CeCase& c, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << c.N << " V=" << c.V << " misalign=" << c.misalign
                                  << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t nv = static_cast<size_t>(c.N) * c.V;
  const std::vector<float> logits = test::Rounded<bf16>(test::RandomNonZero(rng, nv, 0.01f, 6.f));
  std::uniform_int_distribution<int> pick(0, c.V - 1);
  std::vector<int32_t> targets(static_cast<size_t>(c.N));
  for (auto& t : targets) t = pick(rng);
  if (c.V > 1) targets[0] = c.V - 1;  // the last column (the scalar tail of a vector row)
  const float grad_scale = 1.0f / static_cast<float>(c.N);  // the caller's 1 / N

  // CPU: per-row losses and gradients.
  std::vector<float> grad_cpu = logits;
  std::vector<float> loss_cpu(static_cast<size_t>(c.N));
  double loss_sum_cpu = 0;
  for (int64_t n = 0; n < c.N; ++n) {
    loss_cpu[n] = static_cast<float>(cpu::CrossEntropyForwardBackward(
        grad_cpu.data() + n * c.V, targets.data() + n, 1, c.V, grad_scale));
    loss_sum_cpu += loss_cpu[n];
  }

  DevArray<bf16> x_dev(logits, c.misalign);
  DevArray<float> loss_dev(static_cast<size_t>(c.N)), loss_fwd_dev(static_cast<size_t>(c.N));
  DevArray<int32_t> tgt_dev(targets.size());
  DYT_TEST_CUDA(
      cudaMemcpy(tgt_dev.get(), targets.data(), targets.size() * 4, cudaMemcpyHostToDevice));
  loss_dev.Poison();
  loss_fwd_dev.Poison();

  // Forward only first: the logits must come back untouched.
  const std::vector<uint8_t> before = x_dev.Bytes();
  DYT_ASSERT_OK(
      CrossEntropyForward(x_dev.get(), loss_fwd_dev.get(), tgt_dev.get(), c.N, c.V, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(x_dev.Bytes(), before) << "CrossEntropyForward wrote the logits";

  DYT_ASSERT_OK(CrossEntropyForwardBackward(x_dev.get(), loss_dev.get(), tgt_dev.get(), c.N, c.V,
                                            grad_scale, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());

  const std::vector<float> loss = loss_dev.Download();
  EXPECT_EQ(test::FirstNonFinite(loss), -1) << "a loss is not finite (never written?)";
  if (c.V == 1) {
    // softmax is 1: every loss and every gradient is exactly 0.
    for (float l : loss) EXPECT_EQ(l, 0.f);
    for (float g : x_dev.Download()) EXPECT_EQ(g, 0.f);
    return;
  }
  const double loss_err = RelL2(loss, loss_cpu);
  EXPECT_LE(loss_err, kLossTol) << "losses: ||gpu - cpu|| / ||cpu|| = " << loss_err;
  double loss_sum = 0;
  for (float l : loss) loss_sum += l;
  EXPECT_NEAR(loss_sum, loss_sum_cpu, kLossTol * std::fabs(loss_sum_cpu) + 1e-6)
      << "sum of the losses";
  EXPECT_EQ(loss_fwd_dev.Bytes(), loss_dev.Bytes())
      << "forward-only losses differ from the forward-backward ones";

  const std::vector<float> grad = x_dev.Download();
  EXPECT_EQ(test::FirstNonFinite(grad), -1) << "a gradient is not finite";
  const double grad_err = RelL2(grad, grad_cpu);
  EXPECT_LE(grad_err, test::kBf16Tol) << "dlogits: ||gpu - cpu|| / ||cpu|| = " << grad_err;
  // The target entries (about -grad_scale) dominate the norm; check the softmax part alone.
  if (c.V > 1) {
    std::vector<float> g_rest = grad, c_rest = grad_cpu;
    for (int64_t n = 0; n < c.N; ++n)
      g_rest[n * c.V + targets[n]] = c_rest[n * c.V + targets[n]] = 0;
    const double rest_err = RelL2(g_rest, c_rest);
    EXPECT_LE(rest_err, test::kBf16Tol)
        << "dlogits off target: ||gpu - cpu|| / ||cpu|| = " << rest_err;
  }
  // Each row of the gradient sums to about 0 (softmax sums to 1, minus the one-hot).
  double worst_row_sum = 0;
  for (int64_t n = 0; n < c.N; ++n) {
    double s = 0;
    for (int i = 0; i < c.V; ++i) s += grad[n * c.V + i];
    worst_row_sum = std::max(worst_row_sum, std::fabs(s) / grad_scale);
  }
  EXPECT_LE(worst_row_sum, 2e-2) << "a gradient row does not sum to ~0 (relative to grad_scale)";
}

class CrossEntropyKernelTest : public ::testing::TestWithParam<CeCase> {};

TEST_P(CrossEntropyKernelTest, MatchesCpu) {
  DYT_REQUIRE_GPU();
  CheckCase(GetParam(), test::TestSeed());
}

const CeCase kCases[] = {
    {4, 32768, 0}, {1000, 32768, 0}, {7, 32768, 1}, {9, 97, 0}, {16, 1001, 0}, {3, 50257, 0},
    {64, 8, 0},    {5, 1, 0},        {33, 4096, 0}, {2, 12, 1}, {40, 15, 0},   {10, 7, 1},
};

void PrintTo(const CeCase& c, std::ostream* os) {
  *os << "N" << c.N << "_V" << c.V << "_mis" << c.misalign;
}

INSTANTIATE_TEST_SUITE_P(Cases, CrossEntropyKernelTest, ::testing::ValuesIn(kCases));

TEST(CrossEntropyKernelTest, ExtremeLogitsStayFinite) {
  DYT_REQUIRE_GPU();
  // One logit far above the rest (a confident model) and one far below: loss ~ 0 for the
  // confident row, log(1023) + 100 ~ 107 for the row whose target is the low one.
  const int V = 1024;
  std::vector<float> logits(2 * V, 0.f);
  logits[5] = 100.f;
  logits[V + 9] = -100.f;
  const std::vector<int32_t> targets = {5, 9};
  DevArray<bf16> x_dev(logits);
  DevArray<float> loss_dev(2);
  DevArray<int32_t> tgt_dev(2);
  DYT_TEST_CUDA(cudaMemcpy(tgt_dev.get(), targets.data(), 8, cudaMemcpyHostToDevice));
  DYT_ASSERT_OK(
      CrossEntropyForwardBackward(x_dev.get(), loss_dev.get(), tgt_dev.get(), 2, V, 0.5f, nullptr));
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  std::vector<float> cpu_logits = logits;
  const float l0 = static_cast<float>(
      cpu::CrossEntropyForwardBackward(cpu_logits.data(), targets.data(), 1, V, 0.5f));
  const float l1 = static_cast<float>(
      cpu::CrossEntropyForwardBackward(cpu_logits.data() + V, targets.data() + 1, 1, V, 0.5f));
  const std::vector<float> loss = loss_dev.Download();
  EXPECT_NEAR(loss[0], l0, 1e-6);
  EXPECT_NEAR(loss[1], l1, 1e-4 * l1);
  const std::vector<float> grad = x_dev.Download();
  EXPECT_EQ(test::FirstNonFinite(grad), -1);
  EXPECT_LE(RelL2(grad, cpu_logits), test::kBf16Tol);
}

// The model's case (V = 32768, a batch of 2048 rows): two runs give the same bits; prints
// the time of one call and its bandwidth counting one read and one write of the logits (the
// second read should come from L2), for the record.
TEST(CrossEntropyKernelTest, LargeBatchIsDeterministicAndTimed) {
  DYT_REQUIRE_GPU();
  const int64_t N = 2048;
  const int V = 32768;
  const uint64_t seed = test::TestSeed();
  SCOPED_TRACE(testing::Message() << "N=" << N << " V=" << V << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const std::vector<float> logits =
      test::RandomNonZero(rng, static_cast<size_t>(N) * V, 0.01f, 6.f);
  std::uniform_int_distribution<int> pick(0, V - 1);
  std::vector<int32_t> targets(static_cast<size_t>(N));
  for (auto& t : targets) t = pick(rng);
  DevArray<bf16> x_dev(logits);
  DevArray<float> loss_dev(static_cast<size_t>(N));
  DevArray<int32_t> tgt_dev(targets.size());
  DYT_TEST_CUDA(
      cudaMemcpy(tgt_dev.get(), targets.data(), targets.size() * 4, cudaMemcpyHostToDevice));
  cudaEvent_t start, stop;
  DYT_TEST_CUDA(cudaEventCreate(&start));
  DYT_TEST_CUDA(cudaEventCreate(&stop));
  std::vector<uint8_t> first_grad, first_loss;
  float ms[2] = {0, 0};
  for (int run = 0; run < 2; ++run) {
    if (run > 0) x_dev.Upload(logits);
    DYT_TEST_CUDA(cudaEventRecord(start));
    DYT_ASSERT_OK(CrossEntropyForwardBackward(x_dev.get(), loss_dev.get(), tgt_dev.get(), N, V,
                                              1.0f / N, nullptr));
    DYT_TEST_CUDA(cudaEventRecord(stop));
    DYT_TEST_CUDA(cudaEventSynchronize(stop));
    DYT_TEST_CUDA(cudaEventElapsedTime(&ms[run], start, stop));
    if (run == 0) {
      first_grad = x_dev.Bytes();
      first_loss = loss_dev.Bytes();
      EXPECT_EQ(test::FirstNonFinite(loss_dev.Download()), -1);
    } else {
      EXPECT_EQ(x_dev.Bytes(), first_grad) << "dlogits differ between two runs";
      EXPECT_EQ(loss_dev.Bytes(), first_loss) << "losses differ between two runs";
    }
  }
  // Forward only, timed on the gradients now in x (any finite values do).
  DYT_TEST_CUDA(cudaEventRecord(start));
  DYT_ASSERT_OK(CrossEntropyForward(x_dev.get(), loss_dev.get(), tgt_dev.get(), N, V, nullptr));
  DYT_TEST_CUDA(cudaEventRecord(stop));
  DYT_TEST_CUDA(cudaEventSynchronize(stop));
  float fwd_ms = 0;
  DYT_TEST_CUDA(cudaEventElapsedTime(&fwd_ms, start, stop));
  DYT_TEST_CUDA(cudaEventDestroy(start));
  DYT_TEST_CUDA(cudaEventDestroy(stop));
  const double bytes = 2.0 * static_cast<double>(N) * V;
  std::printf(
      "[ timing   ] CrossEntropyForwardBackward N=%lld V=%d: %.1f us (%.0f GB/s read+write);"
      " CrossEntropyForward: %.1f us (%.0f GB/s read)\n",
      static_cast<long long>(N), V, 1e3 * ms[1], 2 * bytes / (ms[1] * 1e6), 1e3 * fwd_ms,
      bytes / (fwd_ms * 1e6));
}

TEST(CrossEntropyKernelArgsTest, RejectsBadArgumentsWithoutLaunching) {
  bf16* x = reinterpret_cast<bf16*>(uintptr_t{256});
  float* f = reinterpret_cast<float*>(uintptr_t{256});
  int32_t* t = reinterpret_cast<int32_t*>(uintptr_t{256});
  const Status v0 = CrossEntropyForwardBackward(x, f, t, 4, 0, 1.f, nullptr);
  EXPECT_EQ(v0.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v0.ToString().find("CrossEntropyForwardBackward: V=0"), std::string::npos)
      << v0.ToString();
  EXPECT_EQ(CrossEntropyForwardBackward(x, f, t, -1, 8, 1.f, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CrossEntropyForward(x, f, nullptr, 4, 8, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CrossEntropyForward(x, nullptr, t, 4, 8, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CrossEntropyForward(nullptr, nullptr, nullptr, 0, 8, nullptr).ok());
}

}  // namespace
}  // namespace dyt::cuda
