// The tokenizer (trained here on a small generated text) and the text -> tokens -> shard ->
// tokens -> text round trip, including `dyt-data encode`'s corpus pipeline.
#include "trainer/data/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <span>

#include "common/sha256.h"
#include "tests/data/test_util.h"
#include "trainer/data/corpus_encoder.h"
#include "trainer/data/sentence_chunks.h"
#include "trainer/data/shard_writer.h"
#include "trainer/data/token_shard.h"

namespace dyt {
namespace {

using ::testing::HasSubstr;

constexpr int kVocab = 400;

// A few thousand lines of pseudo-random English-like text, the same on every run.
std::string GenerateCorpus(int lines) {
  static const char* kWords[] = {"the",  "and",  "of",     "light", "earth", "water",
                                 "said", "unto", "heaven", "day",   "night", "was",
                                 "good", "God",  "made",   "in",    "be",    "there",
                                 "seed", "tree", "fruit",  "after", "his",   "kind"};
  uint64_t state = 12345;
  std::string text;
  for (int i = 0; i < lines; ++i) {
    text += "Ge" + std::to_string(i % 50 + 1) + ":" + std::to_string(i % 31 + 1);
    const int n = 5 + static_cast<int>(state % 12);
    for (int w = 0; w < n; ++w) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      text += " ";
      text += kWords[(state >> 33) % (sizeof(kWords) / sizeof(kWords[0]))];
    }
    text += (i % 3 == 0) ? ".\n" : ", and;\n";
  }
  return text;
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScratchDir();
    corpus_ = new std::string(GenerateCorpus(3000));
    testing::WriteFile(dir_->File("corpus.txt"), *corpus_);
    TokenizerTrainOptions options;
    options.input_files = {dir_->File("corpus.txt")};
    options.model_prefix = dir_->File("tok");
    options.vocab_size = kVocab;
    train_status_ = new Status(TrainTokenizer(options));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete corpus_;
    delete train_status_;
  }
  void SetUp() override {
    ASSERT_TRUE(train_status_->ok()) << train_status_->ToString();
    auto t = LoadTokenizer(dir_->File("tok.model"));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tokenizer_ = std::move(*t);
  }

  static testing::ScratchDir* dir_;
  static std::string* corpus_;
  static Status* train_status_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

testing::ScratchDir* TokenizerTest::dir_ = nullptr;
std::string* TokenizerTest::corpus_ = nullptr;
Status* TokenizerTest::train_status_ = nullptr;

TEST_F(TokenizerTest, LoadsWithExpectedVocabAndStableId) {
  EXPECT_EQ(tokenizer_->vocab_size(), kVocab);
  EXPECT_EQ(tokenizer_->bos_id(), 1);
  EXPECT_EQ(tokenizer_->eos_id(), 2);
  auto file_id = Sha256FileHex(dir_->File("tok.model"));
  ASSERT_TRUE(file_id.ok());
  EXPECT_EQ(tokenizer_->id(), *file_id);
  auto id = TokenizerFileId(dir_->File("tok.model"));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, tokenizer_->id());
  EXPECT_TRUE(std::filesystem::exists(dir_->File("tok.vocab")));
}

TEST_F(TokenizerTest, TrainingIsDeterministicAndIndependentOfOutputPath) {
  TokenizerTrainOptions options;
  options.input_files = {dir_->File("corpus.txt")};
  options.model_prefix = dir_->File("again");
  options.vocab_size = kVocab;
  ASSERT_TRUE(TrainTokenizer(options).ok());
  EXPECT_EQ(testing::ReadFile(dir_->File("again.model")),
            testing::ReadFile(dir_->File("tok.model")));
}

TEST_F(TokenizerTest, RoundTripsTextExactly) {
  const std::vector<std::string> texts = {
      "In the beginning God created the heaven and the earth.",
      "two\nlines",
      "trailing newline\n",
      "\n\nblank lines\n\n\nbetween\n",
      "  leading spaces and   inner  runs   ",
      "tabs\tand\r\ncarriage returns",
      "digits 1234567890 and 3:16",
      "unseen characters: naïve café — 東京 🙂",
      "",
  };
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tokenizer_->Encode(text);
    for (const int32_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, kVocab);
      EXPECT_NE(id, tokenizer_->bos_id());
      EXPECT_NE(id, tokenizer_->eos_id());
    }
    EXPECT_EQ(tokenizer_->Decode(ids), text);
  }
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(*corpus_)), *corpus_);
}

TEST_F(TokenizerTest, CompressesTrainingText) {
  // A BPE model trained on this text must beat one token per byte by a wide margin.
  const auto ids = tokenizer_->Encode(*corpus_);
  EXPECT_LT(ids.size() * 2, corpus_->size());
}

TEST_F(TokenizerTest, DecodeTreatsEosAsDocumentBoundaryAndSurvivesBadIds) {
  std::vector<int32_t> ids = tokenizer_->Encode("first document");
  ids.push_back(tokenizer_->eos_id());
  const auto second = tokenizer_->Encode("second one");
  ids.insert(ids.end(), second.begin(), second.end());
  EXPECT_EQ(tokenizer_->Decode(ids), "first documentsecond one");
  EXPECT_EQ(tokenizer_->Decode(std::vector<int32_t>{-1, kVocab + 5}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(TokenizerTest, TextTokensShardTokensTextRoundTrip) {
  const std::string text = corpus_->substr(0, 5000) + "and something new: ünïcödé\n";
  const std::vector<int32_t> ids = tokenizer_->Encode(text);
  const std::string path = dir_->File("roundtrip.bin");
  ASSERT_TRUE(WriteShard(path, ids, tokenizer_->vocab_size(), tokenizer_->id()).ok());
  auto shard = TokenShard::Open(path);
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ((*shard)->tokenizer_id(), tokenizer_->id());
  EXPECT_EQ((*shard)->vocab_size(), static_cast<uint32_t>(kVocab));
  std::vector<int32_t> back((*shard)->size());
  (*shard)->Read(0, back.size(), back.data());
  EXPECT_EQ(back, ids);
  EXPECT_EQ(tokenizer_->Decode(back), text);
}

TEST_F(TokenizerTest, EncodeCorpusWritesTrainAndValShards) {
  const std::string a = corpus_->substr(0, 20000);
  const std::string b = "a second, shorter document\nwith two lines\n";
  testing::WriteFile(dir_->File("a.txt"), a);
  testing::WriteFile(dir_->File("b.txt"), b);
  EncodeOptions options;
  options.input_files = {dir_->File("a.txt"), dir_->File("b.txt")};
  options.output = dir_->File("train.bin");
  options.val_output = dir_->File("val.bin");
  options.val_fraction = 0.1;
  auto result = EncodeCorpus(*tokenizer_, options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->documents, 2u);
  EXPECT_EQ(result->text_bytes, a.size() + b.size());

  // Each document is its tokens then EOS; the last 10% of the stream is the validation shard.
  std::vector<int32_t> expected = tokenizer_->Encode(a);
  expected.push_back(tokenizer_->eos_id());
  const auto eb = tokenizer_->Encode(b);
  expected.insert(expected.end(), eb.begin(), eb.end());
  expected.push_back(tokenizer_->eos_id());
  const uint64_t val = (expected.size() + 9) / 10;
  EXPECT_EQ(result->val_tokens, val);
  EXPECT_EQ(result->train_tokens + result->val_tokens, expected.size());

  auto train = TokenShard::Open(options.output);
  auto valid = TokenShard::Open(options.val_output);
  ASSERT_TRUE(train.ok() && valid.ok());
  std::vector<int32_t> got((*train)->size() + (*valid)->size());
  (*train)->Read(0, (*train)->size(), got.data());
  (*valid)->Read(0, (*valid)->size(), got.data() + (*train)->size());
  EXPECT_EQ(got, expected);
  EXPECT_EQ((*valid)->tokenizer_id(), tokenizer_->id());
}

TEST_F(TokenizerTest, EncodeCorpusMatchesWholeFileEncodingAcrossBlocks) {
  // Larger than the encoder's 1 MiB read block, so blocks are split at newlines.
  std::string big;
  while (big.size() < (3u << 20) / 2) big += *corpus_;
  testing::WriteFile(dir_->File("big.txt"), big);
  EncodeOptions options;
  options.input_files = {dir_->File("big.txt")};
  options.output = dir_->File("big.bin");
  ASSERT_TRUE(EncodeCorpus(*tokenizer_, options).ok());
  auto shard = TokenShard::Open(options.output);
  ASSERT_TRUE(shard.ok());
  std::vector<int32_t> got((*shard)->size());
  (*shard)->Read(0, got.size(), got.data());
  std::vector<int32_t> expected = tokenizer_->Encode(big);
  expected.push_back(tokenizer_->eos_id());
  EXPECT_EQ(got, expected);
}

// Bytes that are not UTF-8 become U+FFFD in the tokenizer; the encoder says where (across its
// read blocks) or, with strict_utf8, refuses the input and writes nothing.
TEST_F(TokenizerTest, EncodeCorpusReportsOrRefusesInputThatIsNotUtf8) {
  std::string text = "caf\xe9 au lait\n";  // Latin-1 e-acute at byte 3
  while (text.size() < (3u << 20) / 2) text += *corpus_;
  const size_t late = text.size();
  text += "\xff\xfe tail\n";
  testing::WriteFile(dir_->File("latin1.txt"), text);
  testing::WriteFile(dir_->File("clean.txt"), "clean text\n");
  EncodeOptions options;
  options.input_files = {dir_->File("clean.txt"), dir_->File("latin1.txt")};
  options.output = dir_->File("latin1.bin");
  auto result = EncodeCorpus(*tokenizer_, options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->invalid_utf8.size(), 1u);
  EXPECT_EQ(result->invalid_utf8[0].path, dir_->File("latin1.txt"));
  EXPECT_EQ(result->invalid_utf8[0].bytes, 3u);
  EXPECT_EQ(result->invalid_utf8[0].first_offset, 3u);

  // Only past the first 1 MiB read block: the offset counts the blocks before it.
  const size_t head = text.find('\n') + 1;
  testing::WriteFile(dir_->File("late.txt"), text.substr(head));
  options.input_files = {dir_->File("late.txt")};
  result = EncodeCorpus(*tokenizer_, options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->invalid_utf8.size(), 1u);
  EXPECT_GT(late - head, size_t(1) << 20);
  EXPECT_EQ(result->invalid_utf8[0].first_offset, late - head);
  EXPECT_EQ(result->invalid_utf8[0].bytes, 2u);

  options.input_files = {dir_->File("clean.txt"), dir_->File("latin1.txt")};
  options.output = dir_->File("strict.bin");
  options.strict_utf8 = true;
  const auto strict = EncodeCorpus(*tokenizer_, options);
  EXPECT_EQ(strict.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(strict.status().message(),
              HasSubstr(dir_->File("latin1.txt") + ": not UTF-8 (byte 3 starts no well-formed"));
  EXPECT_FALSE(std::filesystem::exists(options.output));
}

// The text of sampled ids after a prompt keeps the space their first piece starts with.
TEST_F(TokenizerTest, AContinuationKeepsTheSpaceItsFirstPieceStartsWith) {
  const std::string text = "In the beginning God created the heaven\nand the earth.";
  const std::vector<int32_t> ids = tokenizer_->Encode(text);
  ASSERT_GT(ids.size(), 4u);
  bool lost_a_space_alone = false;
  for (size_t k = 0; k <= ids.size(); ++k) {
    const std::span<const int32_t> head(ids.data(), k), rest(ids.data() + k, ids.size() - k);
    EXPECT_EQ(tokenizer_->Decode(head) + DecodeContinuation(*tokenizer_, head, rest), text)
        << "split at " << k;
    lost_a_space_alone |= tokenizer_->Decode(head) + tokenizer_->Decode(rest) != text;
  }
  EXPECT_TRUE(lost_a_space_alone) << "decoding the rest alone drops a leading space somewhere";
}

// The number of training threads is not part of the model file: the same text and options
// give the same tokenizer id on every machine, whatever --threads.
TEST_F(TokenizerTest, TheModelDoesNotDependOnTheNumberOfThreads) {
  TokenizerTrainOptions options;
  options.input_files = {dir_->File("corpus.txt")};
  options.model_prefix = dir_->File("threads");
  options.vocab_size = kVocab;
  options.num_threads = 3;
  ASSERT_TRUE(TrainTokenizer(options).ok());
  EXPECT_EQ(testing::ReadFile(dir_->File("threads.model")),
            testing::ReadFile(dir_->File("tok.model")));
}

// Without byte fallback, newlines still round-trip (a newline piece of their own; they all
// became <unk>), and text without a piece is counted as <unk> by EncodeCorpus.
TEST_F(TokenizerTest, WithoutByteFallbackNewlinesRoundTripAndUnknownTextIsCounted) {
  TokenizerTrainOptions options;
  options.input_files = {dir_->File("corpus.txt")};
  options.model_prefix = dir_->File("nofallback");
  options.vocab_size = 150;
  options.byte_fallback = false;
  const Status trained = TrainTokenizer(options);
  ASSERT_TRUE(trained.ok()) << trained.ToString();
  auto t = LoadTokenizer(dir_->File("nofallback.model"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // The corpus's first two lines, and a blank one: characters it has pieces for.
  const size_t second_end = corpus_->find('\n', corpus_->find('\n') + 1);
  const std::string lines = corpus_->substr(0, second_end) + "\n\n" + corpus_->substr(0, 9);
  const std::vector<int32_t> ids = (*t)->Encode(lines);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), (*t)->unk_id()), 0);
  EXPECT_EQ((*t)->Decode(ids), lines);
  const std::string vocab = testing::ReadFile(dir_->File("nofallback.vocab"));
  EXPECT_EQ(std::count(vocab.begin(), vocab.end(), '\n'), 150) << "a line per piece";
  EXPECT_NE(vocab.find("\\n\t"), std::string::npos) << "the newline piece, escaped";

  testing::WriteFile(dir_->File("unseen.txt"), "the line\n\xe6\x9d\xb1\xe4\xba\xac the end\n");
  EncodeOptions encode;
  encode.input_files = {dir_->File("unseen.txt")};
  encode.output = dir_->File("unseen.bin");
  auto r = EncodeCorpus(**t, encode);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->unknown_tokens, 1u);
  auto clean = EncodeCorpus(*tokenizer_, encode);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_EQ(clean->unknown_tokens, 0u) << "byte fallback has a piece for everything";
}

// Lines longer than sentencepiece's max_sentence_length (an article per line) are trained on,
// in pieces cut before a space or between characters: they were skipped without a word, and a
// corpus of only such lines had "no text to train on".
TEST_F(TokenizerTest, LongLinesAreTrainedOn) {
  std::string long_lines;
  for (size_t at = 0; at < corpus_->size();) {  // ~20 KB lines of the corpus's words
    const size_t end = std::min(corpus_->size(), at + 20000);
    std::string line = corpus_->substr(at, end - at);
    std::replace(line.begin(), line.end(), '\n', ' ');
    long_lines += line + "\n";
    at = end;
  }
  std::string unbroken;  // one 12 KB line without a space, of 3-byte characters
  for (int i = 0; i < 4000; ++i) unbroken += i % 2 ? "\xe6\x9d\xb1" : "\xe4\xba\xac";
  testing::WriteFile(dir_->File("long.txt"), long_lines + unbroken + "\n");
  TokenizerTrainOptions options;
  options.input_files = {dir_->File("long.txt")};
  options.model_prefix = dir_->File("long");
  options.vocab_size = kVocab;
  const Status trained = TrainTokenizer(options);
  ASSERT_TRUE(trained.ok()) << trained.ToString();
  auto t = LoadTokenizer(dir_->File("long.model"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const auto ids = (*t)->Encode(long_lines);
  EXPECT_LT(ids.size() * 2, long_lines.size()) << "it learned the words of the long lines";
  EXPECT_EQ((*t)->Decode(ids), long_lines);
  const auto east = (*t)->Encode(unbroken);
  EXPECT_LT(east.size(), 4000u) << "pieces of the two characters, not bytes";
  EXPECT_EQ((*t)->Decode(east), unbroken);
}

// The sentences of a long line: none longer than the limit, none cut inside a UTF-8 character,
// a cut at a space drops only that space, and together they are the line.
TEST(SentenceChunkTest, CutsAtSpacesOrBetweenCharactersAndLosesNothingElse) {
  std::string line;
  uint64_t x = 7;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    switch ((x >> 33) % 8) {
      case 0:
        line += ' ';
        break;
      case 1:
        line += "\xe6\x9d\xb1";  // 3 bytes
        break;
      case 2:
        line += "\xf0\x9f\x99\x82";  // 4 bytes
        break;
      default:
        line += char('a' + (x >> 40) % 26);
    }
    if (i == 9000) line += std::string(3000, 'z');  // stretches without a space
    if (i == 15000) {
      for (int k = 0; k < 2000; ++k) line += k % 2 ? "\xe6\x9d\xb1" : "\xf0\x9f\x99\x82";
    }
  }
  for (size_t max : {7u, 64u, 4096u}) {
    std::string rebuilt;
    size_t pos = 0, chunks = 0;
    while (pos < line.size()) {
      const SentenceChunk c = NextSentenceChunk(line, pos, max);
      ASSERT_GT(c.end, pos) << "max " << max;
      ASSERT_LE(c.end - pos, max);
      ASSERT_NE(static_cast<unsigned char>(line[pos]) & 0xC0, 0x80) << "starts mid-character";
      ASSERT_TRUE(c.next == c.end || (c.next == c.end + 1 && line[c.end] == ' '));
      rebuilt += line.substr(pos, c.end - pos) + line.substr(c.end, c.next - c.end);
      pos = c.next;
      ++chunks;
    }
    EXPECT_EQ(rebuilt, line) << "max " << max;
    EXPECT_GE(chunks, line.size() / max);
  }
  EXPECT_EQ(NextSentenceChunk("short", 0, 10).end, 5u);
}

TEST(TokenizerErrorsTest, ReportsMissingAndInvalidModels) {
  auto missing = LoadTokenizer("/nonexistent/tok.model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("tokenizer model not found"));
  EXPECT_THAT(missing.status().message(), Not(HasSubstr("relative to")));
  // A relative path says what it was relative to (the trainer reads paths from the working
  // directory; dytctl reads a job file's relative to the file).
  auto relative = LoadTokenizer("no/such/tok.model");
  ASSERT_FALSE(relative.ok());
  EXPECT_THAT(relative.status().message(),
              HasSubstr("no/such/tok.model (relative to the working directory " +
                        std::filesystem::current_path().string() + ")"));

  testing::ScratchDir dir;
  testing::WriteFile(dir.File("junk.model"), "this is not a protobuf");
  auto junk = LoadTokenizer(dir.File("junk.model"));
  ASSERT_FALSE(junk.ok());
  EXPECT_THAT(junk.status().message(), HasSubstr("not a sentencepiece model"));

  TokenizerTrainOptions options;
  options.input_files = {dir.File("absent.txt")};
  options.model_prefix = dir.File("m");
  const Status s = TrainTokenizer(options);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("absent.txt"));
}

}  // namespace
}  // namespace dyt
