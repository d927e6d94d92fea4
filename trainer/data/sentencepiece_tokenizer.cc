// The sentencepiece implementation of Tokenizer, LoadTokenizer and TrainTokenizer.
//
// This is the ONLY file that may include sentencepiece headers: they define their own
// `absl::string_view`, which breaks any translation unit that also sees real abseil (gRPC).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string_view>
#include <unordered_map>

#include "common/same_file.h"
#include "common/sha256.h"
#include "trainer/data/sentence_chunks.h"
#include "trainer/data/tokenizer.h"

namespace dyt {
namespace {

constexpr char kReplacementChar[] = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, std::string id)
      : sp_(std::move(sp)), id_(std::move(id)) {
    vocab_size_ = sp_->GetPieceSize();
    // PieceToId answers unk_id for a missing piece, so check that it really is the byte piece
    // (byte fallback) or the user-defined newline piece (TrainTokenizer adds one without).
    const int nl = sp_->PieceToId("<0x0A>");
    const int user_nl = sp_->PieceToId("\n");
    newline_id_ = sp_->IsByte(nl) ? nl : !sp_->IsUnknown(user_nl) ? user_nl : -1;
  }

  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> out;
    if (newline_id_ < 0) {
      AppendEncoded(text, out);
      return out;
    }
    size_t start = 0;
    while (true) {
      const size_t nl = text.find('\n', start);
      AppendEncoded(text.substr(start, nl == std::string_view::npos ? nl : nl - start), out);
      if (nl == std::string_view::npos) break;
      out.push_back(newline_id_);
      start = nl + 1;
    }
    return out;
  }

  std::string Decode(std::span<const int32_t> ids) const override {
    std::string out;
    std::vector<int> segment;
    // sentencepiece strips the dummy-prefix space only at the start of what it decodes, so
    // each line (and each document after BOS/EOS) is decoded as its own segment.
    auto flush = [&] {
      if (segment.empty()) return;
      std::string text;
      const auto status = sp_->Decode(segment, &text);
      if (!status.ok()) Fatal("decode", status.ToString());
      out += text;
      segment.clear();
    };
    for (const int32_t id : ids) {
      if (id < 0 || id >= vocab_size_) {
        flush();
        out += kReplacementChar;
      } else if (id == newline_id_) {
        flush();
        out += '\n';
      } else if (id == bos_id() || id == eos_id()) {
        flush();
      } else {
        segment.push_back(id);
      }
    }
    flush();
    return out;
  }

  int vocab_size() const override { return vocab_size_; }
  int32_t unk_id() const override { return sp_->unk_id(); }
  int32_t bos_id() const override { return sp_->bos_id(); }
  int32_t eos_id() const override { return sp_->eos_id(); }
  const std::string& id() const override { return id_; }

 private:
  void AppendEncoded(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::vector<int> ids;
    const auto status = sp_->Encode(text, &ids);
    // A loaded model only fails to encode on internal corruption; returning a partial result
    // would silently damage training data, so stop instead.
    if (!status.ok()) Fatal("encode", status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  [[noreturn]] static void Fatal(const char* what, const std::string& message) {
    std::fprintf(stderr, "fatal: sentencepiece %s failed: %s\n", what, message.c_str());
    std::abort();
  }

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string id_;
  int vocab_size_ = 0;
  int newline_id_ = -1;
};

// The longest sentence FileLineIterator gives the trainer: below sentencepiece's default
// max_sentence_length (4192 bytes), left as it is because options are recorded in the model.
constexpr size_t kMaxSentenceBytes = 4096;

// Feeds every line of every input file to the trainer (a long one in sentences of at most
// kMaxSentenceBytes), so file names may contain commas (sentencepiece's own `input` option
// splits on them) and a missing file fails up front.

class FileLineIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit FileLineIterator(std::vector<std::string> files) : files_(std::move(files)) {
    Advance();
  }
  bool done() const override { return done_; }
  void Next() override { Advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void Advance() {
    while (true) {
      if (pos_ < text_.size()) return TakeChunk();
      if (in_.is_open() && std::getline(in_, text_)) {
        pos_ = 0;
        if (text_.empty()) {  // a blank line is a sentence too, as before
          line_.clear();
          return;
        }
        continue;
      }
      if (in_.is_open()) in_.close();
      if (next_file_ == files_.size()) {
        done_ = true;
        return;
      }
      in_.open(files_[next_file_++], std::ios::binary);
    }
  }

  void TakeChunk() {
    const SentenceChunk chunk = NextSentenceChunk(text_, pos_, kMaxSentenceBytes);
    line_.assign(text_, pos_, chunk.end - pos_);
    pos_ = chunk.next;
  }

  std::vector<std::string> files_;
  size_t next_file_ = 0;
  std::ifstream in_;
  std::string text_;  // the current line
  size_t pos_ = 0;    // where its next sentence starts
  std::string line_;
  bool done_ = false;
};

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Writes to "<path>.tmp" and renames, so readers never see a half-written model.
Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError("cannot create", tmp, errno);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) return IoError("cannot write", tmp, errno);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return IoError("cannot rename to", path, errno);
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> TokenizerFileId(const std::string& model_path) {
  if (!FileExists(model_path))
    return NotFound("tokenizer model not found: " + model_path + RelativeNote(model_path));
  return Sha256FileHex(model_path);
}

StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_path) {
  if (!FileExists(model_path))
    return NotFound("tokenizer model not found: " + model_path + RelativeNote(model_path));
  std::ifstream in(model_path, std::ios::binary);
  if (!in) return IoError("cannot open", model_path, errno);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    return InvalidArgument("not a sentencepiece model: " + model_path + " (" + status.ToString() +
                           ")");
  }
  return std::unique_ptr<Tokenizer>(
      std::make_unique<SentencePieceTokenizer>(std::move(sp), Sha256Hex(bytes)));
}

namespace {

// sentencepiece reports what is wrong with the input as a failed internal check ("Internal:
// ./src/trainer_interface.cc(660) [...] Vocabulary size too high (400). Please set it to a
// value <= 277."). The ones a user meets are said again in terms of our options; any other
// message is passed on as it is.
Status ExplainTrainingFailure(const std::string& message, const TokenizerTrainOptions& options) {
  const std::string vocab = "--vocab-size " + std::to_string(options.vocab_size);
  auto number_after = [&](const std::string& marker) -> std::string {
    const size_t at = message.find(marker);
    if (at == std::string::npos) return "";
    const size_t begin = at + marker.size();
    size_t end = begin;
    while (end < message.size() && std::isdigit(static_cast<unsigned char>(message[end]))) ++end;
    return message.substr(begin, end - begin);
  };
  if (message.find("sentences_.empty()") != std::string::npos) {
    return InvalidArgument("train-tokenizer: the input files hold no text to train on");
  }
  if (const std::string most = number_after("Please set it to a value <= "); !most.empty()) {
    return InvalidArgument("train-tokenizer: " + vocab +
                           " is more than this text has pieces for (" + most +
                           " at most); use a smaller --vocab-size or more text");
  }
  if (message.find("smaller than required_chars") != std::string::npos) {
    const std::string need = number_after(" vs ");
    return InvalidArgument(
        "train-tokenizer: " + vocab + " is less than the " + (need.empty() ? "" : need + " ") +
        "pieces this text needs at least (one per distinct character, the special pieces, and "
        "256 byte pieces with byte fallback); use a larger --vocab-size or a "
        "--character-coverage below 1");
  }
  return InvalidArgument("train-tokenizer: sentencepiece training failed: " + message);
}

// sentencepiece records the training's num_threads in the model (TrainerSpec, field 16 of
// ModelProto's field 2), so the same text and options gave another file, and so another
// tokenizer id, for each --threads; the pieces do not depend on it. This rewrites it to 1.
// By hand on the protobuf wire format: Debian's libsentencepiece-dev ships no ModelProto
// header, and libprotobuf must stay out of what links sentencepiece's protobuf-lite copy.
bool ReadVarint(std::string_view& in, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    *value |= uint64_t(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void WriteVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Consumes one value of `wire_type`; false when `in` ends inside it or the type is unknown.
bool SkipValue(std::string_view& in, uint64_t wire_type) {
  uint64_t n = 0;
  switch (wire_type) {
    case 0:
      return ReadVarint(in, &n);
    case 1:
      n = 8;
      break;
    case 2:
      if (!ReadVarint(in, &n)) return false;
      break;
    case 5:
      n = 4;
      break;
    default:
      return false;
  }
  if (n > in.size()) return false;
  in.remove_prefix(n);
  return true;
}

StatusOr<std::string> WithOneTrainingThread(std::string_view in) {
  constexpr uint64_t kTrainerSpec = 2, kNumThreads = 16, kVarint = 0, kLength = 2;
  const auto malformed = [] {
    return Internal("train-tokenizer: the trained model is not a valid ModelProto");
  };
  std::string out;
  while (!in.empty()) {
    const char* field = in.data();
    uint64_t tag = 0;
    if (!ReadVarint(in, &tag)) return malformed();
    if (tag != (kTrainerSpec << 3 | kLength)) {
      if (!SkipValue(in, tag & 7)) return malformed();
      out.append(field, size_t(in.data() - field));
      continue;
    }
    uint64_t length = 0;
    if (!ReadVarint(in, &length) || length > in.size()) return malformed();
    std::string_view spec = in.substr(0, length);
    in.remove_prefix(length);
    std::string rewritten;
    while (!spec.empty()) {
      const char* inner = spec.data();
      uint64_t inner_tag = 0;
      if (!ReadVarint(spec, &inner_tag) || !SkipValue(spec, inner_tag & 7)) return malformed();
      if (inner_tag == (kNumThreads << 3 | kVarint)) {
        WriteVarint(inner_tag, &rewritten);
        WriteVarint(1, &rewritten);
      } else {
        rewritten.append(inner, size_t(spec.data() - inner));
      }
    }
    WriteVarint(tag, &out);
    WriteVarint(rewritten.size(), &out);
    out += rewritten;
  }
  return out;
}

}  // namespace

Status TrainTokenizer(const TokenizerTrainOptions& options) {
  if (options.input_files.empty()) return InvalidArgument("train-tokenizer: no input files");
  for (const std::string& f : options.input_files) {
    if (!FileExists(f)) return NotFound("train-tokenizer: input file not found: " + f);
  }
  if (options.model_prefix.empty()) return InvalidArgument("train-tokenizer: empty model prefix");
  if (options.vocab_size < 1) return InvalidArgument("train-tokenizer: vocab_size must be >= 1");
  if (options.max_sentences != 0 && options.max_sentences <= 100) {
    return InvalidArgument("train-tokenizer: --max-sentences " +
                           std::to_string(options.max_sentences) +
                           ": must be 0 (every line) or above 100 (sentencepiece samples no "
                           "fewer)");
  }
  if (!(options.character_coverage > 0 && options.character_coverage <= 1)) {
    return InvalidArgument("train-tokenizer: character_coverage must be in (0, 1]");
  }
  // Why these options: identity normalization and kept whitespace make Decode(Encode(t)) == t;
  // split digits and whitespace-only pieces follow LLaMA's tokenizer; ids 0..2 are
  // <unk>, <s>, </s> and there is no pad piece (the trainer never pads).
  std::unordered_map<std::string, std::string> args = {
      {"vocab_size", std::to_string(options.vocab_size)},
      {"model_type", "bpe"},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"byte_fallback", options.byte_fallback ? "true" : "false"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"num_threads", std::to_string(options.num_threads)},
      {"input_sentence_size", std::to_string(options.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      // Errors only: INFO is a line per merge batch, and its warnings come before a failure
      // that ExplainTrainingFailure says better.
      {"minloglevel", "2"},
  };
  // Encode joins lines with a newline piece: the byte piece <0x0A> with byte fallback, else
  // this one (without it every newline became <unk>). Only then: an option set is recorded in
  // the model, and so changes the tokenizer id.
  if (!options.byte_fallback) args["user_defined_symbols"] = "\n";
  sentencepiece::SetRandomGeneratorSeed(1234);  // only sampling (max_sentences) uses it
  FileLineIterator lines(options.input_files);
  // Training into memory (no model_prefix) keeps output paths out of the model proto, so the
  // tokenizer id depends only on the corpus and the options, not on where the file is written.
  std::string trained;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &trained);
  if (!status.ok()) return ExplainTrainingFailure(status.ToString(), options);
  DYT_ASSIGN_OR_RETURN(const std::string model, WithOneTrainingThread(trained));
  sentencepiece::SentencePieceProcessor sp;
  if (const auto s = sp.LoadFromSerializedProto(model); !s.ok()) {
    return Internal("train-tokenizer: trained model does not load: " + s.ToString());
  }
  // The .vocab file is for people (piece and score per line, as sentencepiece writes it).
  std::string vocab;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    // The newline piece (no byte fallback) as "\n", so each piece stays on a line of its own.
    const std::string piece = sp.IdToPiece(i) == "\n" ? "\\n" : sp.IdToPiece(i);
    vocab += piece + "\t" + std::to_string(static_cast<int>(sp.GetScore(i))) + "\n";
  }
  DYT_RETURN_IF_ERROR(WriteFileAtomically(options.model_prefix + ".model", model));
  DYT_RETURN_IF_ERROR(WriteFileAtomically(options.model_prefix + ".vocab", vocab));
  return Status::Ok();
}

}  // namespace dyt
