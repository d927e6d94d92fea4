// The dyt-data binary: what the user asked wrong exits 2 with the option named, before any
// input is read; a device or directory given as input is refused (/dev/zero was read forever).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/common/process.h"

namespace dyt {
namespace {

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
  };
  for (const auto& [args, says] : cases) {
    std::vector<std::string> argv = {DYT_DATA_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    ::dyt::testing::ProcessResult r = ::dyt::testing::Run(argv);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << ::testing::PrintToString(args) << "\n"
                                                   << r.err;
  }
}

}  // namespace
}  // namespace dyt
