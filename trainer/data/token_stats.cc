#include "trainer/data/token_stats.h"

#include <algorithm>
#include <cmath>

namespace dyt {

void TokenCounter::Add(const TokenShard& shard) {
  for (uint64_t i = 0; i < shard.size(); ++i) {
    const uint32_t t = shard[i];
    if (t < kDenseLimit) {
      if (t >= dense_.size()) dense_.resize(std::max<size_t>(t + 1, 2 * dense_.size()), 0);
      ++dense_[t];
    } else {
      ++sparse_[t];
    }
  }
  tokens_ += shard.size();
}

TokenStats TokenCounter::Stats() const {
  TokenStats s;
  s.tokens = tokens_;
  if (tokens_ == 0) return s;
  const double n = static_cast<double>(tokens_);
  auto add = [&](uint32_t token, uint64_t count) {
    if (count == 0) return;
    ++s.distinct;
    s.max_token = std::max(s.max_token, token);
    const double p = static_cast<double>(count) / n;
    s.entropy_nats -= p * std::log(p);
  };
  for (size_t t = 0; t < dense_.size(); ++t) add(static_cast<uint32_t>(t), dense_[t]);
  for (const auto& [t, c] : sparse_) add(t, c);
  s.entropy_bits = s.entropy_nats / std::log(2.0);
  return s;
}

}  // namespace dyt
