// PhaseProfiler (trainer/cuda/phase_profiler.h): each phase is charged the GPU time from its
// mark to the next, names accumulate across marks and flushes in first-seen order, and misuse
// (two streams, more marks than the capacity) is reported by Flush without corrupting totals.
#include "trainer/cuda/phase_profiler.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/cuda/test_util.h"

namespace dyt::cuda {
namespace {

// A memset of `bytes` on `stream`: GPU work whose time grows with its size.
void Work(void* buf, size_t bytes, cudaStream_t stream) {
  DYT_TEST_CUDA(cudaMemsetAsync(buf, 1, bytes, stream));
}

TEST(PhaseProfilerTest, ChargesEachPhaseItsOwnWork) {
  DYT_REQUIRE_GPU();
  const size_t big = size_t{1} << 30, small = size_t{1} << 26;  // 16x apart
  void* buf = nullptr;
  DYT_TEST_CUDA(cudaMalloc(&buf, big));
  cudaStream_t s = nullptr;
  DYT_TEST_CUDA(cudaStreamCreate(&s));
  auto p = PhaseProfiler::Create(16);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  PhaseProfiler& prof = **p;
  DYT_ASSERT_OK(prof.Flush(s));  // nothing marked: nothing added
  EXPECT_TRUE(prof.totals().empty());
  for (int step = 0; step < 2; ++step) {
    prof.Mark("big", s);
    Work(buf, big, s);
    prof.Mark("small", s);
    Work(buf, small, s);
    prof.Mark("big", s);  // the same phase again: one entry, two contributions
    Work(buf, big, s);
    DYT_ASSERT_OK(prof.Flush(s));
  }
  ASSERT_EQ(prof.totals().size(), 2u);
  EXPECT_EQ(prof.totals()[0].first, "big");
  EXPECT_EQ(prof.totals()[1].first, "small");
  const double big_ms = prof.totals()[0].second, small_ms = prof.totals()[1].second;
  EXPECT_GT(small_ms, 0.0);
  // 4 big memsets vs 2 small ones, 32x the bytes: far more than any timing noise.
  EXPECT_GT(big_ms, 4 * small_ms) << "big " << big_ms << " ms, small " << small_ms << " ms";
  EXPECT_NEAR(prof.total_ms(), big_ms + small_ms, 1e-9);
  prof.Reset();
  EXPECT_TRUE(prof.totals().empty());
  DYT_TEST_CUDA(cudaStreamDestroy(s));
  DYT_TEST_CUDA(cudaFree(buf));
}

TEST(PhaseProfilerTest, MisuseIsReportedAndDropsOnlyThatBatch) {
  DYT_REQUIRE_GPU();
  cudaStream_t a = nullptr, b = nullptr;
  DYT_TEST_CUDA(cudaStreamCreate(&a));
  DYT_TEST_CUDA(cudaStreamCreate(&b));
  auto p = PhaseProfiler::Create(4);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  PhaseProfiler& prof = **p;

  prof.Mark("x", a);
  prof.Mark("y", b);
  Status st = prof.Flush(a);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("more than one stream"), std::string::npos) << st.ToString();
  EXPECT_TRUE(prof.totals().empty());

  for (int i = 0; i < 5; ++i) prof.Mark("z", a);  // capacity 4: 3 marks + the flush's event
  st = prof.Flush(a);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("capacity"), std::string::npos) << st.ToString();
  EXPECT_TRUE(prof.totals().empty());

  prof.Mark("ok", a);  // usable again after a failed flush
  DYT_ASSERT_OK(prof.Flush(a));
  ASSERT_EQ(prof.totals().size(), 1u);
  EXPECT_EQ(prof.totals()[0].first, "ok");
  DYT_TEST_CUDA(cudaStreamDestroy(a));
  DYT_TEST_CUDA(cudaStreamDestroy(b));
}

TEST(PhaseProfilerTest, RejectsATinyCapacity) {
  DYT_REQUIRE_GPU();
  auto p = PhaseProfiler::Create(1);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dyt::cuda
