// bf16 <-> fp32 host arrays for the emulated kernels and products (kernels_emu.cc,
// gemm_emu.cc): "device" memory is host memory here.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace dyt::cuda::emu {

inline std::vector<float> ToFloat(const __nv_bfloat16* p, int64_t n) {
  std::vector<float> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = __bfloat162float(p[i]);
  return out;
}
inline void StoreBf16(__nv_bfloat16* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = __float2bfloat16_rn(src[i]);
}
// a[rows, cols] -> a^T[cols, rows]
inline std::vector<float> Transpose(const std::vector<float>& a, int64_t rows, int64_t cols) {
  std::vector<float> t(a.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) t[size_t(c * rows + r)] = a[size_t(r * cols + c)];
  }
  return t;
}

}  // namespace dyt::cuda::emu
