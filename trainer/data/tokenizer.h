// The tokenizer interface: text <-> token ids, and training a new BPE model.
//
// The only implementation wraps a sentencepiece model. sentencepiece's header declares its own
// `absl::string_view`, which clashes with the real abseil that gRPC headers bring in, so it is
// included in exactly one file (sentencepiece_tokenizer.cc) and nothing here mentions it.
//
// Newlines: sentencepiece trains on lines and never learns a piece containing '\n'. When the
// model has byte fallback (the default we train with), Encode splits the text at '\n', encodes
// each line on its own (so a line starts exactly as training lines did) and joins the lines with
// the byte piece <0x0A>; Decode undoes this. With our training options (identity normalization,
// whitespace kept as is, byte fallback) Decode(Encode(text)) == text for any UTF-8 text.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dyt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`. Adds no BOS/EOS: document boundaries are the caller's business.
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;

  // Text of `ids`. BOS/EOS are dropped (each starts a fresh segment, as if at the start of a
  // text); ids outside [0, vocab_size) become U+FFFD, so decoding model samples never fails.
  virtual std::string Decode(std::span<const int32_t> ids) const = 0;

  // Number of ids; every id Encode returns is < vocab_size().
  virtual int vocab_size() const = 0;
  // -1 when the model defines none. unk_id: what text without a piece becomes (with byte
  // fallback, only an invalid UTF-8 sequence's U+FFFD can be left without one).
  virtual int32_t unk_id() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;

  // The lowercase hex SHA-256 of the model file's bytes: stable across loads and machines,
  // recorded in shards so a loader can check that data and tokenizer belong together.
  virtual const std::string& id() const = 0;
};

// The text `ids` add after `before`: Decode(before + ids) past Decode(before). Decoding `ids`
// alone drops the leading space of its first piece ("▁the" at the start of a decode), which
// glued a sample to its prompt ("Andthe").
std::string DecodeContinuation(const Tokenizer& tokenizer, std::span<const int32_t> before,
                               std::span<const int32_t> ids);

// Loads a sentencepiece model file (e.g. "kjv.model"). NOT_FOUND when the file is missing,
// INVALID_ARGUMENT when it is not a sentencepiece model.
StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_path);

// The id a tokenizer loaded from `model_path` would have, without parsing the model.
StatusOr<std::string> TokenizerFileId(const std::string& model_path);

struct TokenizerTrainOptions {
  std::vector<std::string> input_files;  // plain UTF-8 text; every line is a training sentence
  std::string model_prefix;              // writes <prefix>.model and <prefix>.vocab
  int vocab_size = 4096;                 // including <unk>, <s>, </s> and the 256 byte pieces
  // Fraction of characters covered by ordinary pieces; the rest go through byte fallback.
  // 1.0 suits small alphabets (English); 0.9995 is the usual choice for CJK-heavy text.
  double character_coverage = 1.0;
  bool byte_fallback = true;  // unknown characters become UTF-8 byte pieces instead of <unk>
  int num_threads = 1;
  // Train on at most this many lines, sampled with a fixed seed; 0 means every line.
  int64_t max_sentences = 0;
};

// Trains a BPE model (sentencepiece). Deterministic for the same inputs and options.
Status TrainTokenizer(const TokenizerTrainOptions& options);

}  // namespace dyt
