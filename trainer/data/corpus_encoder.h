// Turns text files into token shards: what `dyt-data encode` does.
//
// Each input file is one document: its tokens followed by EOS (when the tokenizer has one),
// so documents never run together and the model learns where one ends. Files are read in
// newline-ended blocks, which encode exactly as the whole file would (the tokenizer encodes
// line by line), but all tokens are held in memory (4 bytes each) until the train/val split
// is known: fine for corpora of a few hundred million tokens, not for web-scale ones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/tokenizer.h"

namespace dyt {

struct EncodeOptions {
  std::vector<std::string> input_files;
  std::string output;      // the training shard
  std::string val_output;  // optional validation shard
  // The LAST ceil(val_fraction * tokens) tokens go to val_output; needs val_output when > 0.
  double val_fraction = 0;
  // Refuse (INVALID_ARGUMENT) an input that is not well-formed UTF-8, instead of encoding each
  // bad byte as U+FFFD (what the tokenizer does with it) and reporting it in the result.
  bool strict_utf8 = false;
};

// An input with bytes that are not well-formed UTF-8 (each was encoded as U+FFFD).
struct InvalidUtf8Input {
  std::string path;
  uint64_t bytes = 0;         // how many
  uint64_t first_offset = 0;  // where the first is, from the start of the file
};

struct EncodeResult {
  uint64_t documents = 0;
  uint64_t text_bytes = 0;
  uint64_t train_tokens = 0;
  uint64_t val_tokens = 0;
  // Tokens that are the tokenizer's unk_id: text it has no piece for, which the model can
  // neither learn nor write (a tokenizer trained without byte fallback, or on other text).
  uint64_t unknown_tokens = 0;
  std::vector<InvalidUtf8Input> invalid_utf8;  // inputs that were not clean UTF-8
};

StatusOr<EncodeResult> EncodeCorpus(const Tokenizer& tokenizer, const EncodeOptions& options);

}  // namespace dyt
