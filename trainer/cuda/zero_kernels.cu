// ZeroRanges (zero_kernels.h): a grid-stride loop over the concatenated ranges; each element's
// range is the last one whose prefix is <= the element's index (so empty ranges, whose prefix
// equals the next one's, are skipped). Stores are 4-byte but consecutive across a warp, so
// they fill whole 32-byte sectors.
#include <algorithm>
#include <cstdint>
#include <string>

#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/kernel_utils.cuh"
#include "trainer/cuda/launch_utils.h"
#include "trainer/cuda/zero_kernels.h"

namespace dyt::cuda {
namespace {

constexpr int kZeroThreads = 256;

__global__ void __launch_bounds__(kZeroThreads)
    ZeroRangesKernel(float* __restrict__ base, const int64_t* __restrict__ begin,
                     const int64_t* __restrict__ prefix, int count, int64_t total) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int r = detail::RunOf(prefix, count, i);  // prefix[0] = 0 <= i
    base[begin[r] + (i - prefix[r])] = 0.f;
  }
}

}  // namespace

Status ZeroRanges(float* base, const int64_t* begin, const int64_t* prefix, int count,
                  int64_t total, cudaStream_t stream) {
  constexpr const char* fn = "ZeroRanges";
  if (count < 0 || total < 0) {
    return InvalidArgument(std::string(fn) + ": count=" + std::to_string(count) +
                           " and total=" + std::to_string(total) + " must be >= 0");
  }
  if (total == 0) return Status::Ok();
  if (count == 0) {
    return InvalidArgument(std::string(fn) + ": total=" + std::to_string(total) +
                           " elements in no range (count=0)");
  }
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "base", base));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "begin", begin));
  DYT_RETURN_IF_ERROR(detail::CheckNotNull(fn, "prefix", prefix));
  const int64_t blocks =
      std::min(detail::CeilDiv(total, kZeroThreads), detail::MaxResidentBlocks(kZeroThreads));
  DYT_LAUNCH(ZeroRangesKernel, static_cast<unsigned>(blocks), kZeroThreads, 0, stream, base, begin,
             prefix, count, total);
  return LaunchStatus(fn);
}

}  // namespace dyt::cuda
