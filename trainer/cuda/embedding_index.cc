// BuildEmbeddingIndex (embedding_kernels.h): host code, kept out of the .cu file so that every
// host-side user (and the host emulation of tests/cuda/emu) compiles it with the C++ compiler.
#include <algorithm>
#include <cstdint>
#include <numeric>

#include "trainer/cuda/embedding_kernels.h"

namespace dyt::cuda {

HostEmbeddingIndex BuildEmbeddingIndex(const int32_t* tokens, int64_t N) {
  HostEmbeddingIndex index;
  if (N <= 0) {
    index.offsets.push_back(0);
    return index;
  }
  // Positions sorted by token; stable, so each group stays in ascending position order.
  index.positions.resize(static_cast<size_t>(N));
  std::iota(index.positions.begin(), index.positions.end(), 0);
  std::stable_sort(index.positions.begin(), index.positions.end(),
                   [tokens](int32_t a, int32_t b) { return tokens[a] < tokens[b]; });
  for (int64_t i = 0; i < N; ++i) {
    const int32_t tok = tokens[index.positions[static_cast<size_t>(i)]];
    if (index.unique.empty() || index.unique.back() != tok) {
      index.unique.push_back(tok);
      index.offsets.push_back(static_cast<int32_t>(i));
    }
  }
  index.offsets.push_back(static_cast<int32_t>(N));
  return index;
}

}  // namespace dyt::cuda
