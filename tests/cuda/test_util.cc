#include "tests/cuda/test_util.h"

#include <cmath>
#include <cstdlib>

#include "trainer/cuda/adamw_kernels.h"

namespace dyt::cuda::test {

std::string NoGpuReason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it so later calls start clean
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorName(err) + " (" +
           cudaGetErrorString(err) + ")";
  }
  if (count == 0) return "cudaGetDeviceCount found 0 devices";
  return "";
}

uint64_t TestSeed() {
  if (const char* env = std::getenv("DYT_TEST_SEED"); env != nullptr && env[0] != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

uint16_t FloatToBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

float Bf16BitsToFloat(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void PrintTo(const Rows& r, std::ostream* os) { *os << "N" << r.N << "_D" << r.D; }

std::string RowsName(const ::testing::TestParamInfo<Rows>& info) {
  // Appended piece by piece: "N" + std::to_string(...) trips GCC 12's false -Wrestrict.
  std::string name = "N";
  name += std::to_string(info.param.N);
  name += "_D";
  name += std::to_string(info.param.D);
  return name;
}

double RelL2(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  if (den == 0) return num == 0 ? 0 : INFINITY;
  return std::sqrt(num / den);
}

int64_t FirstNonFinite(const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

namespace {

// SplitMix64: a fast counter-based generator. Filling 12M-element tensors through
// std::uniform_real_distribution takes ~0.4 s each, which adds up over the test variants.
uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from the top 24 bits.
float Unit(uint64_t bits) { return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f); }

}  // namespace

std::vector<float> RandomNonZero(std::mt19937_64& rng, size_t n, float lo, float hi) {
  const uint64_t base = rng();
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t bits = SplitMix64(base + i);
    const float mag = lo + (hi - lo) * Unit(bits);
    v[i] = (bits & 1) ? -mag : mag;
  }
  return v;
}

std::vector<float> RandomPositive(std::mt19937_64& rng, size_t n, float lo, float hi) {
  const uint64_t base = rng();
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * Unit(SplitMix64(base + i));
  return v;
}

void CudaCheck(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
  }
}

void ExpectOnlyWeightDecay(const ParamLayout& layout, const AdamWConfig& adamw, float lr,
                           const std::vector<float>& before, const std::vector<float>& after) {
  ASSERT_EQ(before.size(), after.size());
  ASSERT_EQ(int64_t(before.size()), layout.total());
  const float decay = AdamWStepScalars(lr, adamw.beta1, adamw.beta2, adamw.eps, adamw.weight_decay,
                                       /*decays=*/true, 1, 1.0f)
                          .decay;
  int decaying = 0, kept = 0;
  for (const ParamTensor& t : layout.tensors()) {
    const bool decays = DecaysWeight(adamw, t.role);
    (decays ? decaying : kept) += 1;
    int64_t wrong = 0, first = -1;
    for (int64_t i = t.offset; i < t.offset + t.numel; ++i) {
      const float want = decays ? before[size_t(i)] * decay : before[size_t(i)];
      if (after[size_t(i)] != want) {
        if (first < 0) first = i;
        ++wrong;
      }
    }
    EXPECT_EQ(wrong, 0) << t.name << (decays ? " (decays)" : " (no decay)") << ": " << wrong
                        << " of " << t.numel << " elements wrong, first at offset " << first;
  }
  EXPECT_GT(decaying, 0) << "no tensor decays: the check checks nothing";
  EXPECT_GT(kept, 0) << "every tensor decays: the check cannot tell runs apart";
}

}  // namespace dyt::cuda::test
