// Cutting a long line of training text into sentences sentencepiece will train on: it skips a
// sentence longer than its max_sentence_length (4192 bytes by default) without a word, so a
// corpus of long lines (an article per line) trained on its short lines only.
#pragma once

#include <cstddef>
#include <string_view>

namespace dyt {

// The sentence of `text` that starts at `begin`: [begin, end), at most `max_bytes` long, and
// where the next one starts. A cut goes at the last space that fits, which is dropped
// (sentencepiece's dummy prefix stands for it, so the next word trains as "▁word"); without a
// space, between two UTF-8 characters. O(max_bytes) per call, so a line costs O(its length).
struct SentenceChunk {
  size_t end = 0;
  size_t next = 0;
};
SentenceChunk NextSentenceChunk(std::string_view text, size_t begin, size_t max_bytes);

}  // namespace dyt
