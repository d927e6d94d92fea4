// The binary really runs on the emulation (the link precedence cuda_runtime_emu.cc relies on),
// and the emulation keeps the promises the README makes.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

namespace {

TEST(EmulationTest, TheRuntimeIsTheHostEmulation) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_EQ(count, 4);
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_NE(std::string(prop.name).find("host emulation"), std::string::npos) << prop.name;
}

TEST(EmulationTest, FreshDeviceMemoryReadsAsNaN) {
  float* p = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), 64 * sizeof(float)), cudaSuccess);
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(std::isnan(p[i])) << i;
  ASSERT_EQ(cudaMemsetAsync(p, 0, 64 * sizeof(float), nullptr), cudaSuccess);
  EXPECT_EQ(p[63], 0.0f);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
}

}  // namespace
