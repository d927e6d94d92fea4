// Token statistics for `dyt-data stats`: counts and the unigram entropy.
//
// The unigram entropy H = -sum p(t) log p(t) over the token frequencies is the loss (in nats)
// of a model that ignores context: a trained model's validation loss should fall well below it,
// which makes it a useful first sanity bound for a new corpus and tokenizer.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "trainer/data/token_shard.h"

namespace dyt {

struct TokenStats {
  uint64_t tokens = 0;
  uint64_t distinct = 0;
  uint32_t max_token = 0;
  double entropy_bits = 0;  // per token
  double entropy_nats = 0;  // per token
};

// Accumulates counts over one or more shards.
class TokenCounter {
 public:
  void Add(const TokenShard& shard);
  TokenStats Stats() const;

 private:
  // Real vocabularies fit the dense table; the map only guards against absurd ids in a bad
  // file turning into a huge allocation.
  static constexpr uint32_t kDenseLimit = 1u << 24;
  std::vector<uint64_t> dense_;
  std::unordered_map<uint32_t, uint64_t> sparse_;
  uint64_t tokens_ = 0;
};

}  // namespace dyt
