#include "trainer/data/token_stream.h"

#include <algorithm>
#include <cassert>

namespace dyt {

void TokenStream::Append(const TokenShard* shard, uint64_t begin, uint64_t count) {
  if (count == 0) return;  // empty segments would break the binary search's invariant
  segments_.push_back({shard, begin, size_, count});
  size_ += count;
}

void TokenStream::Read(uint64_t offset, uint64_t n, int32_t* out) const {
  assert(offset + n <= size_);
  // The last segment starting at or before `offset`.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](uint64_t off, const Segment& s) { return off < s.stream_begin; });
  --it;
  while (n > 0) {
    const uint64_t within = offset - it->stream_begin;
    const uint64_t take = std::min(n, it->count - within);
    it->shard->Read(it->shard_begin + within, take, out);
    out += take;
    offset += take;
    n -= take;
    ++it;
  }
}

}  // namespace dyt
