// Helpers for the GPU tests: skipping without a GPU, bf16 on the host, random inputs, device
// tensors with a host mirror, and the error measure.
//
// The comparison rule (METHOD.md): err = ||gpu - cpu||_2 / ||cpu||_2 over all elements, with
// the CPU twin run in fp32 on the same (bf16-rounded) inputs. Any NaN or Inf makes err
// infinite, so an element the kernel never wrote (outputs are poisoned with NaN first) fails.
//   bf16 outputs:                                    err <= 1e-2 (bf16 rounds at 2^-9 ~ 2e-3)
//   fp32 outputs of fp32 math on identical inputs:   err <= 1e-4 (1e-5 for rstd)
//   fp32 sums over up to N*D terms (dalpha):          err <= 1e-3
//   anything through the hardware tanh (kFast):       err <= 1e-2
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/status.h"
#include "trainer/model/param_layout.h"
#include "trainer/optim/adamw.h"

namespace dyt::cuda::test {

inline constexpr double kBf16Tol = 1e-2;
inline constexpr double kFp32Tol = 1e-4;
inline constexpr double kRstdTol = 1e-5;
inline constexpr double kScalarSumTol = 1e-3;

// Empty when a CUDA GPU is usable; otherwise why not (no driver, no device, ...).
std::string NoGpuReason();

// The seed of this test's random inputs: $DYT_TEST_SEED if set, else fresh from the OS (so
// every run draws new inputs); tests print it in their SCOPED_TRACE to reproduce a failure.
uint64_t TestSeed();

// bf16 on the host: round to nearest even, NaN kept NaN.
uint16_t FloatToBf16Bits(float f);
float Bf16BitsToFloat(uint16_t b);
inline float RoundToBf16(float f) { return Bf16BitsToFloat(FloatToBf16Bits(f)); }

// The value f takes once stored as T.
template <typename T>
float RoundTo(float f) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return RoundToBf16(f);
  } else {
    return f;
  }
}

// ||got - want|| / ||want||; +infinity if got has a NaN/Inf or the sizes differ.
double RelL2(const std::vector<float>& got, const std::vector<float>& want);
// Index of the first non-finite element, or -1.
int64_t FirstNonFinite(const std::vector<float>& v);

// Uniform magnitudes in [lo, hi] with random signs (never zero).
std::vector<float> RandomNonZero(std::mt19937_64& rng, size_t n, float lo, float hi);
// Uniform in [lo, hi] (lo > 0: positive, never zero).
std::vector<float> RandomPositive(std::mt19937_64& rng, size_t n, float lo, float hi);

// Throws std::runtime_error (gtest reports it as the test's failure) when err is not cudaSuccess.
void CudaCheck(cudaError_t err, const char* what);
#define DYT_TEST_CUDA(expr) ::dyt::cuda::test::CudaCheck((expr), #expr)

// A device array of T (float or bf16) with `offset` elements of padding in front (to test
// misaligned pointers), filled from fp32 host values rounded to T.
template <typename T>
class DevArray {
 public:
  explicit DevArray(size_t n, size_t offset = 0) : n_(n), offset_(offset) {
    DYT_TEST_CUDA(cudaMalloc(&base_, (n + offset) * sizeof(T) + 16));
  }
  DevArray(const std::vector<float>& values, size_t offset = 0) : DevArray(values.size(), offset) {
    Upload(values);
  }
  ~DevArray() { cudaFree(base_); }
  DevArray(const DevArray&) = delete;
  DevArray& operator=(const DevArray&) = delete;

  T* get() const { return reinterpret_cast<T*>(base_) + offset_; }
  size_t size() const { return n_; }

  void Upload(const std::vector<float>& values) {
    if (values.size() != n_) throw std::runtime_error("DevArray::Upload: size mismatch");
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      std::vector<uint16_t> bits(n_);
      for (size_t i = 0; i < n_; ++i) bits[i] = FloatToBf16Bits(values[i]);
      DYT_TEST_CUDA(cudaMemcpy(get(), bits.data(), n_ * 2, cudaMemcpyHostToDevice));
    } else {
      DYT_TEST_CUDA(cudaMemcpy(get(), values.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
    }
  }

  // Every byte 0xFF: NaN in bf16 and in fp32, so an unwritten element shows.
  void Poison() { DYT_TEST_CUDA(cudaMemset(get(), 0xFF, n_ * sizeof(T))); }

  std::vector<float> Download() const {
    std::vector<float> out(n_);
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      std::vector<uint16_t> bits(n_);
      DYT_TEST_CUDA(cudaMemcpy(bits.data(), get(), n_ * 2, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < n_; ++i) out[i] = Bf16BitsToFloat(bits[i]);
    } else {
      DYT_TEST_CUDA(cudaMemcpy(out.data(), get(), n_ * sizeof(T), cudaMemcpyDeviceToHost));
    }
    return out;
  }

  // The raw bytes, for bit-exact comparisons.
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out(n_ * sizeof(T));
    DYT_TEST_CUDA(cudaMemcpy(out.data(), get(), out.size(), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  size_t n_;
  size_t offset_;
  void* base_ = nullptr;
};

// A device copy of a host array of any trivially copyable T (index and run tables).
template <typename T>
class DevVector {
 public:
  explicit DevVector(const std::vector<T>& v) {
    DYT_TEST_CUDA(cudaMalloc(&p_, std::max<size_t>(v.size(), 1) * sizeof(T)));
    DYT_TEST_CUDA(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DevVector() { cudaFree(p_); }
  DevVector(const DevVector&) = delete;
  DevVector& operator=(const DevVector&) = delete;
  const T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

// Rounds every value to what T can hold (so CPU and GPU see identical inputs).
template <typename T>
std::vector<float> Rounded(std::vector<float> v) {
  for (float& f : v) f = RoundTo<T>(f);
  return v;
}

template <typename T>
const char* TypeName() {
  return std::is_same_v<T, __nv_bfloat16> ? "bf16" : "fp32";
}

// A row-wise kernel test's shape: N rows of width D, named "N7_D1000" in test names
// (INSTANTIATE_TEST_SUITE_P(..., RowsName)) and in failure messages (PrintTo).
struct Rows {
  int64_t N;
  int D;
};
void PrintTo(const Rows& r, std::ostream* os);
std::string RowsName(const ::testing::TestParamInfo<Rows>& info);

}  // namespace dyt::cuda::test

// Checks a backend's weight decay tensor by tensor: after one AdamW update with zero gradients
// from zero moments (the step term is then exactly 0), each parameter must be its value
// `before` times (1 - lr * weight_decay), one float product, when its tensor decays, and
// unchanged when it does not.
namespace dyt::cuda::test {
void ExpectOnlyWeightDecay(const ParamLayout& layout, const AdamWConfig& adamw, float lr,
                           const std::vector<float>& before, const std::vector<float>& after);
}  // namespace dyt::cuda::test

// First statement of every test that needs a GPU.
#define DYT_REQUIRE_GPU()                                                     \
  do {                                                                        \
    const std::string dyt_no_gpu_ = ::dyt::cuda::test::NoGpuReason();         \
    if (!dyt_no_gpu_.empty()) GTEST_SKIP() << "no CUDA GPU: " << dyt_no_gpu_; \
  } while (0)

// Asserts a dyt::Status is OK, printing it otherwise.
#define DYT_ASSERT_OK(expr)                                           \
  do {                                                                \
    const ::dyt::Status dyt_st_ = (expr);                             \
    ASSERT_TRUE(dyt_st_.ok()) << #expr << ": " << dyt_st_.ToString(); \
  } while (0)
