#include "trainer/data/sentence_chunks.h"

namespace dyt {

SentenceChunk NextSentenceChunk(std::string_view text, size_t begin, size_t max_bytes) {
  const std::string_view rest = text.substr(begin);
  if (rest.size() <= max_bytes) return {text.size(), text.size()};
  const size_t space = rest.rfind(' ', max_bytes);
  if (space != std::string_view::npos && space > 0) return {begin + space, begin + space + 1};
  size_t cut = max_bytes;  // rest[cut] exists: rest is longer than max_bytes
  while (cut > 1 && (static_cast<unsigned char>(rest[cut]) & 0xC0) == 0x80) --cut;
  return {begin + cut, begin + cut};
}

}  // namespace dyt
