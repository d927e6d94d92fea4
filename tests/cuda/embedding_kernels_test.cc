// The embedding kernels against their CPU twins (dyt::cpu::EmbeddingForward / Backward):
// forward bit-exact (one product per element); backward with heavily repeated tokens, with and
// without the learnable scale, vector (D % 8 == 0) and scalar (odd D) paths; rows of absent
// tokens untouched; two runs bit-identical; and the host grouping BuildEmbeddingIndex.
// Tolerances: see test_util.h.
#include "trainer/cuda/embedding_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cpu/kernels.h"

namespace dyt::cuda {
namespace {

using test::DevArray;
using test::RelL2;

// A device copy of host int32 values.
class DevInts {
 public:
  explicit DevInts(const std::vector<int32_t>& v) : a_(v.size()) {
    if (!v.empty()) {
      DYT_TEST_CUDA(cudaMemcpy(a_.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    }
  }
  const int32_t* get() const { return a_.get(); }

 private:
  DevArray<int32_t> a_;
};

// Tokens in [0, V) with many repeats: a third of the positions hold one of 3 hot tokens.
std::vector<int32_t> SkewedTokens(std::mt19937_64& rng, int64_t N, int V) {
  std::uniform_int_distribution<int> any(0, V - 1), hot(0, 2), coin(0, 2);
  std::vector<int32_t> t(static_cast<size_t>(N));
  for (auto& x : t) x = coin(rng) == 0 ? 7 * hot(rng) % V : any(rng);
  return t;
}

struct EmbCase {
  int64_t N;
  int V;
  int D;
};

TEST(EmbeddingKernelTest, ForwardMatchesCpuExactly) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const EmbCase c :
       {EmbCase{1, 50, 768}, EmbCase{513, 1000, 768}, EmbCase{300, 97, 100}, EmbCase{65, 33, 77}}) {
    for (const bool with_scale : {true, false}) {
      SCOPED_TRACE(testing::Message() << "N=" << c.N << " V=" << c.V << " D=" << c.D
                                      << " scale=" << with_scale << " seed=" << seed);
      std::mt19937_64 rng(seed + static_cast<uint64_t>(c.N));
      const std::vector<int32_t> tokens = SkewedTokens(rng, c.N, c.V);
      const std::vector<float> table =
          test::RandomNonZero(rng, static_cast<size_t>(c.V) * c.D, 0.01f, 1.f);
      const float scale = with_scale ? 1.7f : 1.0f;
      std::vector<float> x_cpu(static_cast<size_t>(c.N) * c.D);
      cpu::EmbeddingForward(x_cpu.data(), tokens.data(), table.data(), scale, c.N, c.D);

      DevInts tok_dev(tokens);
      DevArray<float> table_dev(table), scale_dev(std::vector<float>{scale}), x_dev(x_cpu.size());
      x_dev.Poison();
      DYT_ASSERT_OK(EmbeddingForward(x_dev.get(), tok_dev.get(), table_dev.get(),
                                     with_scale ? scale_dev.get() : nullptr, c.N, c.D, nullptr));
      DYT_TEST_CUDA(cudaDeviceSynchronize());
      const std::vector<float> x = x_dev.Download();
      EXPECT_EQ(test::FirstNonFinite(x), -1);
      EXPECT_EQ(RelL2(x, x_cpu), 0.0);
    }
  }
}

// Runs the GPU backward once on fresh copies of dtable0 / dscale0; returns dtable, dscale.
struct BackwardOut {
  std::vector<uint8_t> dtable_bytes;
  std::vector<float> dtable;
  float dscale = 0;
};

BackwardOut RunBackward(const std::vector<int32_t>& tokens, const std::vector<float>& dx,
                        const std::vector<float>& table, const std::vector<float>& dtable0,
                        float dscale0, const float* scale, bool want_dscale, int D) {
  const int64_t N = static_cast<int64_t>(tokens.size());
  const HostEmbeddingIndex host = BuildEmbeddingIndex(tokens.data(), N);
  DevInts unique(host.unique), offsets(host.offsets), positions(host.positions);
  EmbeddingIndex index;
  index.unique = unique.get();
  index.offsets = offsets.get();
  index.positions = positions.get();
  index.n_unique = static_cast<int>(host.unique.size());
  DevArray<bf16> dx_dev(dx);
  DevArray<float> table_dev(table), dtable_dev(dtable0), dscale_dev(std::vector<float>{dscale0});
  const size_t scratch_bytes = EmbeddingBackwardScratchBytes(index.n_unique);
  DevArray<uint8_t> scratch(scratch_bytes);
  DYT_TEST_CUDA(cudaMemset(scratch.get(), 0xFF, scratch_bytes));
  const Status st =
      EmbeddingBackward(dtable_dev.get(), want_dscale ? dscale_dev.get() : nullptr, dx_dev.get(),
                        index, table_dev.get(), scale, N, D, scratch.get(), scratch_bytes, nullptr);
  EXPECT_TRUE(st.ok()) << st.ToString();
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  return {dtable_dev.Bytes(), dtable_dev.Download(), dscale_dev.Download()[0]};
}

void CheckBackward(const EmbCase& c, bool with_scale, bool all_same, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << c.N << " V=" << c.V << " D=" << c.D << " scale="
                                  << with_scale << " all_same=" << all_same << " seed=" << seed);
  std::mt19937_64 rng(seed);
  std::vector<int32_t> tokens = SkewedTokens(rng, c.N, c.V);
  if (all_same) tokens.assign(tokens.size(), c.V - 1);
  const size_t vd = static_cast<size_t>(c.V) * c.D, nd = static_cast<size_t>(c.N) * c.D;
  const std::vector<float> table = test::RandomNonZero(rng, vd, 0.01f, 1.f);
  const std::vector<float> dtable0 = test::RandomNonZero(rng, vd, 0.01f, 1.f);
  const std::vector<float> dx = test::Rounded<bf16>(test::RandomNonZero(rng, nd, 0.01f, 1.f));
  const float scale = with_scale ? 0.8f : 1.0f;
  const float dscale0 = 0.25f;

  std::vector<float> dtable_cpu = dtable0;
  float dscale_cpu = dscale0;
  cpu::EmbeddingBackward(dtable_cpu.data(), &dscale_cpu, dx.data(), tokens.data(), table.data(),
                         scale, c.N, c.D);
  double abs_terms = 0;  // sum of |dx[n, i] * table[token, i]|: the scale of dscale's rounding
  for (int64_t n = 0; n < c.N; ++n) {
    for (int i = 0; i < c.D; ++i) {
      abs_terms += std::fabs(double(dx[n * c.D + i]) * table[int64_t{tokens[n]} * c.D + i]);
    }
  }

  DevArray<float> scale_dev(std::vector<float>{scale});
  const float* scale_ptr = with_scale ? scale_dev.get() : nullptr;
  const BackwardOut a = RunBackward(tokens, dx, table, dtable0, dscale0, scale_ptr, true, c.D);

  std::vector<bool> present(static_cast<size_t>(c.V), false);
  for (int32_t t : tokens) present[t] = true;
  std::vector<float> got_delta, want_delta;
  int64_t absent_changed = 0;
  for (int v = 0; v < c.V; ++v) {
    for (int i = 0; i < c.D; ++i) {
      const size_t k = static_cast<size_t>(v) * c.D + i;
      if (present[v]) {
        got_delta.push_back(a.dtable[k] - dtable0[k]);
        want_delta.push_back(dtable_cpu[k] - dtable0[k]);
      } else if (a.dtable[k] != dtable0[k]) {
        ++absent_changed;
      }
    }
  }
  EXPECT_EQ(absent_changed, 0) << "rows of tokens absent from the batch changed";
  EXPECT_EQ(test::FirstNonFinite(a.dtable), -1);
  const double err = RelL2(got_delta, want_delta);
  EXPECT_LE(err, test::kFp32Tol) << "dtable increment: ||gpu - cpu|| / ||cpu|| = " << err;

  const double ds_gpu = double(a.dscale) - dscale0, ds_cpu = double(dscale_cpu) - dscale0;
  EXPECT_LE(std::fabs(ds_gpu - ds_cpu), test::kScalarSumTol * std::fabs(ds_cpu) + 1e-6 * abs_terms)
      << "dscale increment: gpu " << ds_gpu << " cpu " << ds_cpu << " (sum |terms| " << abs_terms
      << ")";

  // Determinism: a second run gives the same bits.
  const BackwardOut b = RunBackward(tokens, dx, table, dtable0, dscale0, scale_ptr, true, c.D);
  EXPECT_EQ(a.dtable_bytes, b.dtable_bytes) << "dtable differs between two runs";
  EXPECT_EQ(std::memcmp(&a.dscale, &b.dscale, sizeof(float)), 0)
      << "dscale differs between two runs: " << a.dscale << " vs " << b.dscale;

  // Without dscale: the same dtable, dscale untouched.
  const BackwardOut c2 = RunBackward(tokens, dx, table, dtable0, dscale0, scale_ptr, false, c.D);
  EXPECT_EQ(a.dtable_bytes, c2.dtable_bytes) << "dtable differs when dscale is not requested";
  EXPECT_EQ(c2.dscale, dscale0);
}

TEST(EmbeddingKernelTest, BackwardMatchesCpuAndIsDeterministic) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const EmbCase c : {EmbCase{1, 50, 768}, EmbCase{2048, 1000, 768}, EmbCase{300, 97, 100},
                          EmbCase{65, 33, 77}, EmbCase{4096, 32768, 256}}) {
    CheckBackward(c, true, false, seed);
    CheckBackward(c, false, false, seed + 1);
  }
  CheckBackward({777, 40, 768}, true, true, seed + 2);  // one group of 777 positions
  CheckBackward({100, 10, 77}, true, true, seed + 3);
}

TEST(EmbeddingKernelTest, BuildEmbeddingIndexGroupsPositionsByToken) {
  const std::vector<int32_t> tokens = {5, 3, 5, 0, 3, 5, 9};
  const HostEmbeddingIndex index = BuildEmbeddingIndex(tokens.data(), 7);
  EXPECT_EQ(index.unique, (std::vector<int32_t>{0, 3, 5, 9}));
  EXPECT_EQ(index.offsets, (std::vector<int32_t>{0, 1, 3, 6, 7}));
  EXPECT_EQ(index.positions, (std::vector<int32_t>{3, 1, 4, 0, 2, 5, 6}));
  const HostEmbeddingIndex empty = BuildEmbeddingIndex(nullptr, 0);
  EXPECT_TRUE(empty.unique.empty());
  EXPECT_EQ(empty.offsets, (std::vector<int32_t>{0}));
  EXPECT_TRUE(empty.positions.empty());
}

TEST(EmbeddingKernelTest, RejectsBadArgumentsWithoutLaunching) {
  float* f = reinterpret_cast<float*>(uintptr_t{256});
  int32_t* i = reinterpret_cast<int32_t*>(uintptr_t{256});
  bf16* b = reinterpret_cast<bf16*>(uintptr_t{256});
  EXPECT_EQ(EmbeddingForward(f, i, f, nullptr, 4, 0, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EmbeddingForward(f, nullptr, f, nullptr, 4, 8, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(EmbeddingForward(nullptr, nullptr, nullptr, nullptr, 0, 8, nullptr).ok());
  EmbeddingIndex index{i, i, i, 3};
  EXPECT_EQ(EmbeddingBackward(f, f, b, index, f, nullptr, 4, 8, nullptr, 0, nullptr).code(),
            StatusCode::kInvalidArgument);  // dscale wanted, no scratch
  EXPECT_EQ(EmbeddingBackward(f, nullptr, b, index, f, nullptr, 2, 8, nullptr, 0, nullptr).code(),
            StatusCode::kInvalidArgument);  // more groups than positions
  EmbeddingIndex no_positions{i, i, nullptr, 3};
  const Status st =
      EmbeddingBackward(f, nullptr, b, no_positions, f, nullptr, 4, 8, nullptr, 0, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.ToString().find("EmbeddingBackward: index.positions"), std::string::npos)
      << st.ToString();
}

}  // namespace
}  // namespace dyt::cuda
