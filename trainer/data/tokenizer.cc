#include "trainer/data/tokenizer.h"

namespace dyt {

std::string DecodeContinuation(const Tokenizer& tokenizer, std::span<const int32_t> before,
                               std::span<const int32_t> ids) {
  std::vector<int32_t> all(before.begin(), before.end());
  all.insert(all.end(), ids.begin(), ids.end());
  const std::string head = tokenizer.Decode(before), text = tokenizer.Decode(all);
  // Decoding is per segment (line, document), so the head is a prefix of the whole; should a
  // model ever decode otherwise, the ids' own text is the best there is.
  if (text.compare(0, head.size(), head) != 0) return tokenizer.Decode(ids);
  return text.substr(head.size());
}

}  // namespace dyt
