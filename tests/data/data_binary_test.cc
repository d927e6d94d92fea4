// The dyt-data binary: what the user asked wrong exits 2 with the option named, before any
// input is read; a device or directory given as input is refused (/dev/zero was read forever);
// input that is not UTF-8 is reported, or refused with --strict-utf8.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/common/process.h"
#include "trainer/data/shard_writer.h"

namespace dyt {
namespace {

// Runs dyt-data with each case's arguments: exit 2, and stderr says the case's text.
template <size_t N>
void ExpectEachExitsTwoSaying(const std::pair<std::vector<std::string>, std::string> (&cases)[N]) {
  for (const auto& [args, says] : cases) {
    std::vector<std::string> argv = {DYT_DATA_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    ::dyt::testing::ProcessResult r = ::dyt::testing::Run(argv);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << ::testing::PrintToString(args) << "\n"
                                                   << r.err;
  }
}

TEST(DataBinaryTest, MistakesExitTwoNamingTheOption) {
  ::dyt::testing::TempDir dir;
  const std::string text = dir.Join("corpus.txt");
  ::dyt::testing::Run({"/bin/sh", "-c", "echo 'In the beginning' > " + text});
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"encode", "--tokenizer", text, "--input", "/dev/zero", "--output", dir.Join("o.bin")},
       "--input: /dev/zero: not a regular file"},
      {{"train-tokenizer", "--input", dir.path(), "--model-prefix", dir.Join("tok")},
       "not a regular file"},
      {{"train-tokenizer", "--input", text, "--model-prefix", dir.Join("tok"), "--bogus"},
       "--bogus"},
      {{"train-tokenizer", "--input", dir.Join("missing.txt"), "--model-prefix", dir.Join("t")},
       "no such file"},
      {{"frobnicate"}, "A subcommand is required"},
      // Outputs that cannot be written are refused before the work, not after it.
      {{"encode", "--tokenizer", text, "--input", text, "--output", dir.Join("no/o.bin")},
       "--output " + dir.Join("no/o.bin") + ": no directory " + dir.Join("no")},
      {{"encode", "--tokenizer", text, "--input", text, "--output", dir.path()},
       "is a directory; name a file"},
      {{"train-tokenizer", "--input", text, "--model-prefix", dir.Join("no/tok")},
       "--model-prefix " + dir.Join("no/tok.model") + ": no directory"},
      {{"train-tokenizer", "--input", text, "--model-prefix", dir.Join("t"), "--threads", "0"},
       "--threads"},
      {{"train-tokenizer", "--input", text, "--model-prefix", dir.Join("t"), "--max-sentences",
        "5"},
       "--max-sentences 5: must be 0 (every line) or above 100"},
  };
  ExpectEachExitsTwoSaying(cases);
}

// An output that names one of the inputs (or the other output), however spelled, is refused
// with exit 2 before anything is written: the input is left as it was.
TEST(DataBinaryTest, AnOutputThatWouldDestroyAnInputIsRefused) {
  ::dyt::testing::TempDir dir;
  const std::string text = dir.Join("a.txt"), model = dir.Join("c.model");
  {
    std::ofstream(text) << "In the beginning\n";
    std::ofstream(model) << "not really a model\n";
  }
  std::filesystem::create_directory(dir.Join("sub"));
  std::filesystem::create_symlink(text, dir.Join("link.txt"));
  const std::string tok = dir.Join("tok.model");
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"encode", "--tokenizer", tok, "--input", text, "--output", text},
       "--output " + text + ": is also --input " + text + "; writing it would destroy that"},
      {{"encode", "--tokenizer", tok, "--input", text, "--output", dir.Join("sub/../a.txt")},
       "is also --input " + text},
      {{"encode", "--tokenizer", tok, "--input", text, "--output", dir.Join("link.txt")},
       "is also --input " + text},
      {{"encode", "--tokenizer", tok, "--input", text, "--output", tok}, "is also --tokenizer"},
      {{"encode", "--tokenizer", tok, "--input", text, "--output", dir.Join("x.bin"),
        "--val-output", dir.Join("x.bin"), "--val-fraction", "0.1"},
       "--val-output " + dir.Join("x.bin") + ": is also --output"},
      {{"decode", "--tokenizer", tok, text, "--output", text}, "is also shard " + text},
      {{"train-tokenizer", "--input", model, "--model-prefix", dir.Join("c")},
       "--model-prefix " + model + ": is also --input"},
  };
  ExpectEachExitsTwoSaying(cases);
  EXPECT_EQ(::dyt::testing::ReadText(text), "In the beginning\n");
  EXPECT_EQ(::dyt::testing::ReadText(model), "not really a model\n");
  EXPECT_FALSE(std::filesystem::exists(dir.Join("x.bin")));
}

// stats fails (exit 1) on a shard holding a token past the vocabulary its header records, as
// the trainer would (it printed the statistics and exited 0); decode refuses a --begin past the
// end (it printed nothing and exited 0).
TEST(DataBinaryTest, StatsFailsOnATokenPastTheVocabularyAndDecodeOnABeginPastTheEnd) {
  ::dyt::testing::TempDir dir;
  const std::string shard = dir.Join("bad.bin");
  ASSERT_TRUE(WriteShard(shard, std::vector<int32_t>{1, 2, 3, 4}, 512, "").ok());
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-2, std::ios::end);
    f.write("\xff\xff", 2);  // the last uint16 token: 65535
  }
  ::dyt::testing::ProcessResult stats = ::dyt::testing::Run({DYT_DATA_BIN, "stats", shard});
  EXPECT_EQ(stats.code, 1) << stats.out << stats.err;
  EXPECT_NE(stats.err.find(shard + " (token 65535 >= vocab_size 512)"), std::string::npos)
      << stats.err;
  EXPECT_NE(stats.out.find("max_token     65535"), std::string::npos) << stats.out;
  ::dyt::testing::ProcessResult decode = ::dyt::testing::Run(
      {DYT_DATA_BIN, "decode", "--tokenizer", dir.Join("none.model"), shard, "--begin", "9"});
  EXPECT_EQ(decode.code, 2) << decode.err;
  EXPECT_NE(decode.err.find("--begin 9: past the end of " + shard + " (4 tokens)"),
            std::string::npos)
      << decode.err;
}

// A corpus that cannot give the tokenizer asked for is told so in dyt-data's options, not in
// sentencepiece's internal check messages.
TEST(DataBinaryTest, ATokenizerTheTextCannotGiveIsExplainedInTermsOfTheOptions) {
  ::dyt::testing::TempDir dir;
  {
    std::ofstream(dir.Join("empty.txt")) << "\n\n";
    std::ofstream(dir.Join("one.txt")) << "one short line\n";
  }
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--input", dir.Join("empty.txt"), "--vocab-size", "400"},
       "train-tokenizer: the input files hold no text to train on"},
      {{"--input", dir.Join("one.txt"), "--vocab-size", "400"},
       "train-tokenizer: --vocab-size 400 is more than this text has pieces for ("},
      {{"--input", dir.Join("one.txt"), "--vocab-size", "100"},
       "train-tokenizer: --vocab-size 100 is less than the "},
  };
  for (const auto& [args, says] : cases) {
    std::vector<std::string> argv = {DYT_DATA_BIN, "train-tokenizer", "--model-prefix",
                                     dir.Join("tok")};
    argv.insert(argv.end(), args.begin(), args.end());
    ::dyt::testing::ProcessResult r = ::dyt::testing::Run(argv);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("trainer_interface.cc"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("LOG(WARNING)"), std::string::npos) << r.err;
  }
}

// Text that is not UTF-8 is encoded (each bad byte as U+FFFD) with a warning naming the file
// and the first bad byte; --strict-utf8 refuses it with exit 2 and writes no shard.
TEST(DataBinaryTest, InputThatIsNotUtf8IsReportedOrRefused) {
  ::dyt::testing::TempDir dir;
  std::string corpus;
  for (int i = 0; i < 400; ++i) {
    corpus += "line " + std::to_string(i * 7919 % 1000) + " of the corpus, word" +
              std::to_string(i % 13) + " and more words\n";
  }
  {
    std::ofstream(dir.Join("corpus.txt")) << corpus;
    std::ofstream(dir.Join("latin1.txt")) << "caf\xe9 au lait\nand a clean line\n";
  }
  auto data = [&](std::vector<std::string> args) {
    args.insert(args.begin(), DYT_DATA_BIN);
    return ::dyt::testing::Run(args);
  };
  ::dyt::testing::ProcessResult tok =
      data({"train-tokenizer", "--input", dir.Join("corpus.txt"), "--model-prefix", dir.Join("tok"),
            "--vocab-size", "320"});
  ASSERT_EQ(tok.code, 0) << tok.err;
  const std::vector<std::string> encode = {
      "encode",  "--tokenizer",          dir.Join("tok.model"),
      "--input", dir.Join("corpus.txt"), dir.Join("latin1.txt")};
  std::vector<std::string> lenient = encode;
  lenient.insert(lenient.end(), {"--output", dir.Join("lenient.bin")});
  ::dyt::testing::ProcessResult r = data(lenient);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: " + dir.Join("latin1.txt") +
                       ": 1 byte(s) that are not UTF-8 (the first at byte 3) were encoded as "
                       "U+FFFD"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.Join("lenient.bin")));

  std::vector<std::string> strict = encode;
  strict.insert(strict.end(), {"--output", dir.Join("strict.bin"), "--strict-utf8"});
  r = data(strict);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(dir.Join("latin1.txt") + ": not UTF-8 (byte 3"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.Join("strict.bin")));
}

}  // namespace
}  // namespace dyt
