#include "trainer/cuda/device_buffer.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "tests/cuda/test_util.h"

namespace dyt::cuda {
namespace {

TEST(DeviceBufferTest, AllocatesMovesAndFrees) {
  DYT_REQUIRE_GPU();
  auto made = DeviceBuffer<float>::Allocate(1000);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  DeviceBuffer<float> a = std::move(made).value();
  ASSERT_NE(a.get(), nullptr);
  EXPECT_EQ(a.size(), 1000u);
  EXPECT_EQ(a.bytes(), 4000u);
  const std::vector<float> host(1000, 1.5f);
  DYT_TEST_CUDA(cudaMemcpy(a.get(), host.data(), a.bytes(), cudaMemcpyHostToDevice));
  float* p = a.get();
  DeviceBuffer<float> b = std::move(a);
  EXPECT_EQ(b.get(), p);
  EXPECT_EQ(a.get(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  std::vector<float> back(1000);
  DYT_TEST_CUDA(cudaMemcpy(back.data(), b.get(), b.bytes(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(back, host);
  b.Reset();
  EXPECT_EQ(b.get(), nullptr);
  EXPECT_EQ(b.size(), 0u);
}

TEST(DeviceBufferTest, ReportsAnImpossibleAllocation) {
  DYT_REQUIRE_GPU();
  auto made = DeviceBuffer<char>::Allocate(size_t{1} << 60);  // an exabyte
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("cudaMalloc"), std::string::npos)
      << made.status().ToString();
  cudaGetLastError();  // an allocation failure is not sticky; clear it anyway
}

TEST(DeviceBufferTest, ZeroElementsIsEmpty) {
  auto made = DeviceBuffer<float>::Allocate(0);  // no CUDA call: runs without a GPU
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->get(), nullptr);
}

}  // namespace
}  // namespace dyt::cuda
