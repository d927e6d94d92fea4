// A logical concatenation of token ranges from several shards, addressed by one offset.
//
// The loader's windows are offsets into such a stream, so a window may run from the end of
// one shard into the next (shards end on document boundaries, marked by EOS, so this is the
// same as crossing a document boundary inside a shard). A stream does not own its shards.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/data/token_shard.h"

namespace dyt {

class TokenStream {
 public:
  // Appends tokens [begin, begin + count) of `shard`, which must outlive the stream.
  void Append(const TokenShard* shard, uint64_t begin, uint64_t count);

  uint64_t size() const { return size_; }
  // Copies stream tokens [offset, offset + n) to `out`; the range must lie inside the stream.
  void Read(uint64_t offset, uint64_t n, int32_t* out) const;

 private:
  struct Segment {
    const TokenShard* shard;
    uint64_t shard_begin;   // first token of the segment inside the shard
    uint64_t stream_begin;  // offset of that token in the stream
    uint64_t count;
  };
  std::vector<Segment> segments_;
  uint64_t size_ = 0;
};

}  // namespace dyt
