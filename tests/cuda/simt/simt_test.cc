// The SIMT emulator itself (simt.h): barriers, shuffles, the ldmatrix + mma.sync idiom of the
// attention kernels against a plain matrix product, cp.async timing, poisoned shared memory,
// launch-configuration errors, and the hangs and divergent warp operations it stops on.
#include "tests/cuda/simt/simt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cuda/attention_common.cuh"
#include "trainer/cuda/kernel_launch.cuh"

namespace dyt::cuda {
namespace {

using test::DevArray;

// out[i] = in[n - 1 - i] through a static __shared__ array (needs the barrier between).
__global__ void ReverseKernel(float* out, const float* in) {
  __shared__ float tile[256];
  const int n = static_cast<int>(blockDim.x);
  const int i = static_cast<int>(threadIdx.x);
  const int base = static_cast<int>(blockIdx.x) * n;
  tile[i] = in[base + i];
  __syncthreads();
  out[base + i] = tile[n - 1 - i];
}

TEST(SimtTest, BarrierOrdersSharedMemoryAcrossWarps) {
  std::vector<float> in(3 * 256);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  DevArray<float> din(in), dout(in.size());
  DYT_LAUNCH(ReverseKernel, 3, 256, 0, nullptr, dout.get(), din.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> out = dout.Download();
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < 256; ++i)
      ASSERT_EQ(out[b * 256 + i], in[b * 256 + 255 - i]) << b << " " << i;
  }
}

// Every lane ends with the sum of the warp's values (the kernels' WarpSum butterfly), and a
// 2-D block's warps are its linear thread ranges.
__global__ void WarpSumKernel(float* out, const float* in) {
  const int tid = static_cast<int>(threadIdx.y * blockDim.x + threadIdx.x);
  out[tid] = detail::WarpSum(in[tid]);
}

TEST(SimtTest, ShuffleXorButterflySumsEachWarp) {
  std::vector<float> in(128);
  for (int i = 0; i < 128; ++i) in[i] = static_cast<float>(i);
  DevArray<float> din(in), dout(128);
  DYT_LAUNCH(WarpSumKernel, 1, dim3(16, 8), 0, nullptr, dout.get(), din.get());
  const std::vector<float> out = dout.Download();
  for (int i = 0; i < 128; ++i) {
    const int w = i / 32;
    EXPECT_EQ(out[i], 32.f * (32 * w) + 496.f) << i;
  }
}

// D[16, 8] = A[16, 16] B[16, 8] the way the attention kernels do it: both tiles in shared
// memory (row-major, bf16), A by ldmatrix.x4, B ([k][n], row-major) by ldmatrix.x4.trans, one
// mma.sync per 8 columns, D written from the accumulator layout.
__global__ void MmaTileKernel(float* d, const bf16* a, const bf16* b) {
  DYT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sa = reinterpret_cast<bf16*>(smem);  // [16][16]
  bf16* sb = sa + 16 * 16;                   // [16][16]: B's 16 columns, two n-tiles
  const int lane = static_cast<int>(threadIdx.x);
  for (int i = lane; i < 256; i += 32) {
    sa[i] = a[i];
    sb[i] = b[i];
  }
  __syncwarp();
  uint32_t fa[4], fb[4];
  // A: lanes 0-15 address rows 0-15 at column 0, lanes 16-31 rows 0-15 at column 8.
  attn::LdMatrixX4(fa, attn::SmemAddr(sa + (lane % 16) * 16 + (lane / 16) * 8));
  // B^T pieces: lanes 0-15 address k-rows 0-15 at n 0, lanes 16-31 k-rows 0-15 at n 8.
  attn::LdMatrixX4Trans(fb, attn::SmemAddr(sb + (lane % 16) * 16 + (lane / 16) * 8));
  float acc0[4] = {0, 0, 0, 0}, acc1[4] = {0, 0, 0, 0};
  attn::Mma(acc0, fa, fb[0], fb[1]);
  attn::Mma(acc1, fa, fb[2], fb[3]);
  const int g = lane / 4, t = lane % 4;
  for (int h = 0; h < 2; ++h) {
    d[g * 16 + 2 * t + h] = acc0[h];
    d[(g + 8) * 16 + 2 * t + h] = acc0[2 + h];
    d[g * 16 + 8 + 2 * t + h] = acc1[h];
    d[(g + 8) * 16 + 8 + 2 * t + h] = acc1[2 + h];
  }
}

TEST(SimtTest, LdMatrixAndMmaComputeTheMatrixProduct) {
  std::mt19937_64 rng(test::TestSeed());
  const std::vector<float> a = test::RandomNonZero(rng, 256, 0.1f, 2.f);
  const std::vector<float> b = test::RandomNonZero(rng, 256, 0.1f, 2.f);
  DevArray<bf16> da(a), db(b);
  DevArray<float> dd(256);
  DYT_LAUNCH(MmaTileKernel, 1, 32, 2 * 256 * sizeof(bf16), nullptr, dd.get(), da.get(), db.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> d = dd.Download();
  std::vector<float> want(256, 0.f);
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 16; ++c) {
      double s = 0;
      for (int k = 0; k < 16; ++k) {
        s += double(test::RoundToBf16(a[r * 16 + k])) * test::RoundToBf16(b[k * 16 + c]);
      }
      want[r * 16 + c] = static_cast<float>(s);
    }
  }
  EXPECT_LT(test::RelL2(d, want), 1e-6);
}

// Thread i copies in[i] to shared memory with cp.async and reads it back before and after the
// wait: before, the copy has not landed (poisoned shared memory reads as NaN).
__global__ void CpAsyncKernel(float* before, float* after, const float* in) {
  DYT_DYNAMIC_SMEM(float, s);
  const int i = static_cast<int>(threadIdx.x);
  attn::CpAsync4(attn::SmemAddr(s + i), in + i, true);
  attn::CpAsyncCommit();
  before[i] = s[i];
  attn::CpAsyncWait<0>();
  after[i] = s[i];
}

TEST(SimtTest, CpAsyncLandsWhenItsGroupIsWaitedFor) {
  std::vector<float> in(64);
  for (int i = 0; i < 64; ++i) in[i] = static_cast<float>(i) + 0.5f;
  DevArray<float> din(in), before(64), after(64);
  DYT_LAUNCH(CpAsyncKernel, 1, 64, 64 * sizeof(float), nullptr, before.get(), after.get(),
             din.get());
  const std::vector<float> b = before.Download(), a = after.Download();
  for (int i = 0; i < 64; ++i) {
    EXPECT_TRUE(std::isnan(b[i])) << i;
    EXPECT_EQ(a[i], in[i]) << i;
  }
}

// out[t] = sum of tile t (64 floats) for tiles 0..n_tiles, each thread summing the whole tile
// from shared memory, double-buffered with cp.async like the attention kernels; kEndBarrier =
// false drops the barrier that keeps the next prefetch from overwriting a tile still in use.
template <bool kEndBarrier>
__global__ void DoubleBufferedSumKernel(float* out, const float* in, int n_tiles) {
  DYT_DYNAMIC_SMEM(float, buf);  // [2][64]
  const int i = static_cast<int>(threadIdx.x);
  attn::CpAsync4(attn::SmemAddr(buf + i), in + i, true);
  attn::CpAsyncCommit();
  for (int t = 0; t < n_tiles; ++t) {
    if (t + 1 < n_tiles) {
      attn::CpAsync4(attn::SmemAddr(buf + ((t + 1) % 2) * 64 + i), in + (t + 1) * 64 + i, true);
    }
    attn::CpAsyncCommit();
    attn::CpAsyncWait<1>();
    __syncthreads();
    float sum = 0.f;
    for (int k = 0; k < 64; ++k) sum += buf[(t % 2) * 64 + k];
    if (i == 63) out[t] = sum;  // the last warp's view
    if (kEndBarrier) __syncthreads();
  }
}

// Sets an environment variable for the test's duration.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(SimtTest, AMissingBarrierShowsWhenAWarpRunsAheadWithEarlyCopies) {
  constexpr int kTiles = 6;
  std::vector<float> in(kTiles * 64), want(kTiles, 0.f);
  for (int i = 0; i < kTiles * 64; ++i) {
    in[i] = static_cast<float>(i / 64 + 1);
    want[i / 64] += in[i];
  }
  DevArray<float> din(in), dout(kTiles);
  auto run = [&](auto kernel) {
    dout.Poison();
    DYT_LAUNCH(kernel, 1, 64, 2 * 64 * sizeof(float), nullptr, dout.get(), din.get(), kTiles);
    return dout.Download();
  };
  // Warps in step (the default): both kernels happen to work.
  EXPECT_EQ(run(DoubleBufferedSumKernel<true>), want);
  EXPECT_EQ(run(DoubleBufferedSumKernel<false>), want);
  ScopedEnv order("DYT_SIMT_ORDER", "low-first");
  ScopedEnv copies("DYT_SIMT_CP_ASYNC", "early");
  EXPECT_EQ(run(DoubleBufferedSumKernel<true>), want);
  EXPECT_NE(run(DoubleBufferedSumKernel<false>), want);  // warp 0 overwrote warp 1's tile
}

// A chain through global memory: block i waits until block i + step (step +1: a later index,
// -1: an earlier one) has written its slot, then writes its own one more.
__global__ void ChainKernel(int* slots, int n, int step) {
  const int i = static_cast<int>(blockIdx.x), from = i + step;
  if (threadIdx.x == 0) {
    int prev = 0;
    if (from >= 0 && from < n) {
      while ((prev = attn::LoadAcquire(&slots[from])) == 0) attn::SpinPause();
    }
    __threadfence();
    atomicAdd(&slots[i], prev + 1);
  }
  __syncthreads();
}

TEST(SimtTest, SeveralHostThreadsRunBlocksThatWaitForEachOther) {
  constexpr int kBlocks = 6;
  auto run = [&](int step) {
    DevArray<int> slots(std::vector<float>(kBlocks, 0.f));
    DYT_LAUNCH(ChainKernel, kBlocks, 64, 0, nullptr, slots.get(), kBlocks, step);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    const std::vector<uint8_t> bytes = slots.Bytes();
    std::vector<int> got(kBlocks);
    std::memcpy(got.data(), bytes.data(), sizeof(int) * kBlocks);
    return got;
  };
  const std::vector<int> down = {6, 5, 4, 3, 2, 1}, up = {1, 2, 3, 4, 5, 6};
  {
    // Two host threads take blocks in index order: a block waiting for an earlier one always
    // finds it started (the GPU's guarantee in practice).
    ScopedEnv blocks("DYT_SIMT_BLOCKS", "2");
    EXPECT_EQ(run(-1), up);
  }
  // Waiting for later blocks needs them all running at once.
  ScopedEnv blocks("DYT_SIMT_BLOCKS", "6");
  EXPECT_EQ(run(+1), down);
  EXPECT_EQ(run(-1), up);
}

__global__ void SmemSumKernel(float* out, int n) {
  DYT_DYNAMIC_SMEM(float, s);
  float sum = 0.f;
  for (int i = 0; i < n; ++i) sum += s[i];
  out[threadIdx.x] = sum;
}

TEST(SimtTest, LaunchConfigurationsAGpuRefusesFail) {
  DevArray<float> out(1024);
  DYT_LAUNCH(SmemSumKernel, 1, 2048, 0, nullptr, out.get(), 0);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // read once
  DYT_LAUNCH(SmemSumKernel, 0, 32, 0, nullptr, out.get(), 0);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  // Over 48 KB of dynamic shared memory needs the kernel's opt-in first.
  const size_t big = 64 * 1024;
  DYT_LAUNCH(SmemSumKernel, 1, 32, big, nullptr, out.get(), 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  ASSERT_EQ(cudaFuncSetAttribute(SmemSumKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(big)),
            cudaSuccess);
  out.Poison();
  DYT_LAUNCH(SmemSumKernel, 1, 32, big, nullptr, out.get(), 1);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  // It ran, and read shared memory nothing wrote: NaN.
  EXPECT_TRUE(std::isnan(out.Download()[0]));
  EXPECT_EQ(
      cudaFuncSetAttribute(SmemSumKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024),
      cudaErrorInvalidValue);
}

__global__ void DivergentBarrierKernel(float* out) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    out[threadIdx.x] = detail::WarpSum(1.f);
  }
}

__global__ void MixedWarpOpsKernel(float* out) {
  if (threadIdx.x % 2 == 0) {
    __syncwarp();
  } else {
    out[threadIdx.x] = detail::WarpSum(1.f);
  }
}

__global__ void OutOfBoundsLdMatrixKernel() {
  DYT_DYNAMIC_SMEM(unsigned char, smem);
  uint32_t r[4];
  attn::LdMatrixX4(r, attn::SmemAddr(smem) + 256);
}

__global__ void WritePastTheEndKernel(float* out, int n) { out[n + threadIdx.x] = 1.f; }

TEST(SimtDeathTest, AWritePastABufferIsReportedWhenItIsFreed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        float* p = nullptr;
        if (cudaMalloc(&p, 100 * sizeof(float)) != cudaSuccess) return;
        DYT_LAUNCH(WritePastTheEndKernel, 1, 1, 0, nullptr, p, 100);
        cudaFree(p);
      },
      "a write outside a cudaMalloc'd buffer of 400 bytes, at byte 400");
}

TEST(SimtDeathTest, StopsOnHangsDivergentWarpOpsAndOutOfBoundsFragments) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DevArray<float> out(64);
  EXPECT_DEATH(DYT_LAUNCH(DivergentBarrierKernel, 1, 64, 0, nullptr, out.get()),
               "deadlock: 1 threads wait at __syncthreads, 31 at a warp operation.*"
               "DivergentBarrierKernel");
  EXPECT_DEATH(DYT_LAUNCH(MixedWarpOpsKernel, 1, 32, 0, nullptr, out.get()),
               "lanes of one warp at different warp operations");
  EXPECT_DEATH(DYT_LAUNCH(OutOfBoundsLdMatrixKernel, 1, 32, 256, nullptr),
               "shared access of 16 bytes at offset 256 \\(dynamic shared memory 256 bytes");
  // Blocks one at a time (the default): block 0 waits for block 1, which a GPU need not have
  // started.
  ScopedEnv one_at_a_time("DYT_SIMT_BLOCKS", "1");
  DevArray<int> slots(std::vector<float>(4, 0.f));
  EXPECT_DEATH(DYT_LAUNCH(ChainKernel, 4, 64, 0, nullptr, slots.get(), 4, +1),
               "a spin-wait on global memory in a block that runs alone.*"
               "ChainKernel.*block index \\(0,0,0\\)");
}

}  // namespace
}  // namespace dyt::cuda
