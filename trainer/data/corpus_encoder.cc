#include "trainer/data/corpus_encoder.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <span>

#include "common/utf8.h"
#include "trainer/data/shard_writer.h"

namespace dyt {
namespace {

constexpr size_t kBlockBytes = 1 << 20;

// Appends the tokens of one file, encoding it in blocks that end at a newline. The tokenizer
// encodes line by line (tokenizer.h), so this equals encoding the whole file at once. A newline
// byte is never inside a UTF-8 sequence, so each block is checked for UTF-8 on its own.
Status EncodeFile(const Tokenizer& tokenizer, const std::string& path, bool strict_utf8,
                  std::vector<int32_t>& out, uint64_t& bytes, InvalidUtf8Input& invalid) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return errno == ENOENT ? NotFound("input file not found: " + path)
                           : IoError("cannot open", path, errno);
  invalid = {path, 0, 0};
  uint64_t block_offset = 0;  // of `pending` in the file
  const auto encode = [&](std::string_view block) -> Status {
    size_t first = 0;
    if (const size_t bad = CountInvalidUtf8(block, &first)) {
      if (invalid.bytes == 0) invalid.first_offset = block_offset + first;
      invalid.bytes += bad;
      if (strict_utf8) {
        return InvalidArgument("encode: " + path + ": not UTF-8 (byte " +
                               std::to_string(invalid.first_offset) +
                               " starts no well-formed UTF-8 sequence); without --strict-utf8 "
                               "such bytes are encoded as U+FFFD");
      }
    }
    const std::vector<int32_t> ids = tokenizer.Encode(block);
    out.insert(out.end(), ids.begin(), ids.end());
    block_offset += block.size();
    return Status::Ok();
  };
  std::string pending;
  std::vector<char> buf(kBlockBytes);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const size_t n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    bytes += n;
    pending.append(buf.data(), n);
    const size_t last_nl = pending.rfind('\n');
    if (last_nl == std::string::npos) continue;
    // Through the newline itself, which becomes the <0x0A> token before the next block.
    DYT_RETURN_IF_ERROR(encode(std::string_view(pending).substr(0, last_nl + 1)));
    pending.erase(0, last_nl + 1);
  }
  if (in.bad()) return IoError("cannot read", path, errno);
  return encode(pending);
}

}  // namespace

StatusOr<EncodeResult> EncodeCorpus(const Tokenizer& tokenizer, const EncodeOptions& options) {
  if (options.input_files.empty()) return InvalidArgument("encode: no input files");
  if (options.output.empty()) return InvalidArgument("encode: no output shard");
  if (!(options.val_fraction >= 0 && options.val_fraction < 1)) {
    return InvalidArgument("encode: val_fraction must be in [0, 1)");
  }
  if (options.val_fraction > 0 && options.val_output.empty()) {
    return InvalidArgument("encode: val_fraction needs a validation output shard");
  }
  EncodeResult result;
  std::vector<int32_t> tokens;
  for (const std::string& path : options.input_files) {
    InvalidUtf8Input invalid;
    DYT_RETURN_IF_ERROR(
        EncodeFile(tokenizer, path, options.strict_utf8, tokens, result.text_bytes, invalid));
    if (invalid.bytes > 0) result.invalid_utf8.push_back(invalid);
    if (tokenizer.eos_id() >= 0) tokens.push_back(tokenizer.eos_id());
    ++result.documents;
  }
  if (tokenizer.unk_id() >= 0) {
    result.unknown_tokens = uint64_t(std::count(tokens.begin(), tokens.end(), tokenizer.unk_id()));
  }
  const uint64_t val_tokens =
      static_cast<uint64_t>(std::ceil(options.val_fraction * static_cast<double>(tokens.size())));
  result.val_tokens = val_tokens;
  result.train_tokens = tokens.size() - val_tokens;
  const std::span<const int32_t> all(tokens);
  const uint32_t vocab = static_cast<uint32_t>(tokenizer.vocab_size());
  DYT_RETURN_IF_ERROR(
      WriteShard(options.output, all.first(result.train_tokens), vocab, tokenizer.id()));
  if (!options.val_output.empty()) {
    DYT_RETURN_IF_ERROR(
        WriteShard(options.val_output, all.last(val_tokens), vocab, tokenizer.id()));
  }
  return result;
}

}  // namespace dyt
