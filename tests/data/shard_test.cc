// Token shards: our format's round trip and every way a file can be broken; llm.c and raw
// nanoGPT files.
#include <glob.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tests/data/test_util.h"
#include "trainer/data/shard_format.h"
#include "trainer/data/shard_writer.h"
#include "trainer/data/token_shard.h"

namespace dyt {
namespace {

using ::testing::HasSubstr;

const std::string kId(64, 'a');

std::vector<int32_t> ReadAll(const TokenShard& shard) {
  std::vector<int32_t> out(shard.size());
  shard.Read(0, shard.size(), out.data());
  return out;
}

// Opens a shard expected to be rejected; returns the status for checks on code and message.
Status OpenError(const std::string& path, ShardFormat format = ShardFormat::kAuto) {
  auto shard = TokenShard::Open(path, format);
  EXPECT_FALSE(shard.ok()) << path << " opened but should not";
  return shard.ok() ? Status::Ok() : shard.status();
}

class ShardTest : public ::testing::Test {
 protected:
  // A valid uint16 shard of 100 tokens, to break in various ways.
  std::string WriteGood(const std::string& name) {
    std::vector<int32_t> tokens(100);
    for (int i = 0; i < 100; ++i) tokens[i] = i * 7 % 1000;
    const std::string path = dir_.File(name);
    EXPECT_TRUE(WriteShard(path, tokens, 1000, kId).ok());
    return path;
  }
  testing::ScratchDir dir_;
};

TEST_F(ShardTest, Uint16RoundTrip) {
  const std::vector<int32_t> tokens = {0, 1, 2, 999, 65535 % 1000, 42};
  ASSERT_TRUE(WriteShard(dir_.File("a.bin"), tokens, 1000, kId).ok());
  auto shard = TokenShard::Open(dir_.File("a.bin"));
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ((*shard)->format(), ShardFormat::kDyt);
  EXPECT_EQ((*shard)->token_bytes(), 2);
  EXPECT_EQ((*shard)->size(), tokens.size());
  EXPECT_EQ((*shard)->vocab_size(), 1000u);
  EXPECT_EQ((*shard)->tokenizer_id(), kId);
  EXPECT_EQ(ReadAll(**shard), tokens);
  EXPECT_EQ((**shard)[3], 999u);
  EXPECT_EQ(std::filesystem::file_size(dir_.File("a.bin")), kDytHeaderBytes + 2 * tokens.size());
}

TEST_F(ShardTest, Uint32WhenVocabExceeds65536) {
  EXPECT_EQ(TokenBytesForVocab(65536), 2u);
  EXPECT_EQ(TokenBytesForVocab(65537), 4u);
  const std::vector<int32_t> tokens = {0, 65535, 65536, 128255};
  ASSERT_TRUE(WriteShard(dir_.File("b.bin"), tokens, 128256, "").ok());
  auto shard = TokenShard::Open(dir_.File("b.bin"), ShardFormat::kDyt);
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ((*shard)->token_bytes(), 4);
  EXPECT_EQ((*shard)->tokenizer_id(), "");
  EXPECT_EQ(ReadAll(**shard), tokens);
}

TEST_F(ShardTest, EmptyShardIsValid) {
  ASSERT_TRUE(WriteShard(dir_.File("e.bin"), {}, 10, "").ok());
  auto shard = TokenShard::Open(dir_.File("e.bin"));
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ((*shard)->size(), 0u);
}

TEST_F(ShardTest, WriterStreamsAndPublishesOnlyOnFinish) {
  const std::string path = dir_.File("s.bin");
  {
    auto w = ShardWriter::Create(path, 50, "");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(std::vector<int32_t>{1, 2}).ok());
    ASSERT_TRUE((*w)->Append(std::vector<int32_t>{3}).ok());
    EXPECT_FALSE(std::filesystem::exists(path));  // still under the temporary name
    ASSERT_TRUE((*w)->Finish().ok());
  }
  auto shard = TokenShard::Open(path);
  ASSERT_TRUE(shard.ok());
  EXPECT_EQ(ReadAll(**shard), (std::vector<int32_t>{1, 2, 3}));
  // Abandoned without Finish: nothing left behind under either name.
  {
    auto w = ShardWriter::Create(dir_.File("abandoned.bin"), 50, "");
    ASSERT_TRUE((*w)->Append(std::vector<int32_t>{1}).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.File("abandoned.bin")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File(".abandoned.bin.tmp")));
  // Under way, the temporary file is a dot file: a shard glob does not match it (a killed
  // encode left one that "shards/*" picked up).
  {
    auto w = ShardWriter::Create(dir_.File("writing.bin"), 50, "");
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(std::filesystem::exists(dir_.File(".writing.bin.tmp")));
    glob_t g;
    ASSERT_EQ(::glob(dir_.File("*").c_str(), 0, nullptr, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      EXPECT_EQ(std::string(g.gl_pathv[i]).find("writing"), std::string::npos) << g.gl_pathv[i];
    }
    ::globfree(&g);
  }
}

TEST_F(ShardTest, WriterRejectsTokensOutsideVocab) {
  auto w = ShardWriter::Create(dir_.File("w.bin"), 10, "");
  ASSERT_TRUE(w.ok());
  const Status s = (*w)->Append(std::vector<int32_t>{3, 10});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("token 10 at position 1 is outside the vocabulary"));
  EXPECT_FALSE(ShardWriter::Create(dir_.File("x.bin"), 10, "not-hex").ok());
}

TEST_F(ShardTest, RejectsTruncatedShard) {
  const std::string path = WriteGood("t.bin");
  ASSERT_EQ(::truncate(path.c_str(), kDytHeaderBytes + 2 * 100 - 2), 0);
  const Status s = OpenError(path);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("truncated: header says 100 tokens"));
  EXPECT_THAT(s.message(), HasSubstr(path));
}

TEST_F(ShardTest, RejectsShardShorterThanHeader) {
  const std::string path = WriteGood("h.bin");
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  EXPECT_THAT(OpenError(path).message(), HasSubstr("truncated: 100 bytes, shorter than"));
}

TEST_F(ShardTest, RejectsTrailingBytes) {
  const std::string path = WriteGood("long.bin");
  testing::WriteFile(path, testing::ReadFile(path) + "xx");
  EXPECT_THAT(OpenError(path).message(), HasSubstr("corrupt: 2 bytes after the 100 tokens"));
}

TEST_F(ShardTest, RejectsCorruptHeader) {
  const std::string path = WriteGood("c.bin");
  std::string bytes = testing::ReadFile(path);
  bytes[16] ^= 0x01;  // the token count: 100 -> 101, which the checksum catches
  testing::WriteFile(path, bytes);
  const Status s = OpenError(path);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("corrupt header (checksum mismatch)"));
}

TEST_F(ShardTest, RejectsBadMagic) {
  const std::string path = WriteGood("m.bin");
  std::string bytes = testing::ReadFile(path);
  bytes[0] = 'X';
  testing::WriteFile(path, bytes);
  EXPECT_THAT(OpenError(path).message(), HasSubstr("unrecognized format"));
  EXPECT_THAT(OpenError(path, ShardFormat::kDyt).message(), HasSubstr("not a dyt shard"));
}

TEST_F(ShardTest, MissingFileIsNotFound) {
  const Status s = OpenError(dir_.File("nope.bin"));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("nope.bin"));
}

TEST_F(ShardTest, ReadsLlmcGpt2Shard) {
  const std::vector<uint32_t> tokens = {50256, 15496, 11, 995, 0, 65535};
  testing::WriteLlmcShard(dir_.File("gpt2.bin"), 20240520, 1, tokens);
  auto shard = TokenShard::Open(dir_.File("gpt2.bin"));  // detected by magic
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ((*shard)->format(), ShardFormat::kLlmc);
  EXPECT_EQ((*shard)->token_bytes(), 2);
  EXPECT_EQ((*shard)->vocab_size(), 0u);  // llm.c records none
  EXPECT_EQ((*shard)->tokenizer_id(), "");
  EXPECT_EQ(ReadAll(**shard), (std::vector<int32_t>{50256, 15496, 11, 995, 0, 65535}));
}

TEST_F(ShardTest, ReadsLlmcLlama3Shard) {
  const std::vector<uint32_t> tokens = {128000, 9906, 1917, 128001};
  testing::WriteLlmcShard(dir_.File("llama3.bin"), 20240801, 7, tokens);
  auto shard = TokenShard::Open(dir_.File("llama3.bin"), ShardFormat::kLlmc);
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ((*shard)->token_bytes(), 4);
  EXPECT_EQ(ReadAll(**shard), (std::vector<int32_t>{128000, 9906, 1917, 128001}));
}

TEST_F(ShardTest, RejectsBrokenLlmcShards) {
  testing::WriteLlmcShard(dir_.File("v.bin"), 20240520, 3, {1, 2});
  EXPECT_THAT(OpenError(dir_.File("v.bin")).message(), HasSubstr("not a supported llm.c shard"));
  testing::WriteLlmcShard(dir_.File("t.bin"), 20240520, 1, {1, 2, 3});
  ASSERT_EQ(::truncate(dir_.File("t.bin").c_str(), 1024 + 4), 0);
  EXPECT_THAT(OpenError(dir_.File("t.bin")).message(), HasSubstr("truncated: header says 3"));
}

TEST_F(ShardTest, ReadsRawNanoGptFilesOnlyWhenAsked) {
  testing::WriteRawShard(dir_.File("train.bin"), 2, {5, 6, 7, 50000});
  const Status s = OpenError(dir_.File("train.bin"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("format: raw_u16"));
  auto shard = TokenShard::Open(dir_.File("train.bin"), ShardFormat::kRawU16);
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ(ReadAll(**shard), (std::vector<int32_t>{5, 6, 7, 50000}));

  testing::WriteRawShard(dir_.File("u32.bin"), 4, {70000, 1});
  auto wide = TokenShard::Open(dir_.File("u32.bin"), ShardFormat::kRawU32);
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(ReadAll(**wide), (std::vector<int32_t>{70000, 1}));

  testing::WriteFile(dir_.File("odd.bin"), "abc");
  EXPECT_THAT(OpenError(dir_.File("odd.bin"), ShardFormat::kRawU16).message(),
              HasSubstr("truncated: 3 bytes is not a whole number of 2-byte tokens"));
}

TEST_F(ShardTest, FindsFirstTokenOutsideVocab) {
  std::vector<int32_t> tokens(200000, 3);
  tokens[150001] = 900;
  ASSERT_TRUE(WriteShard(dir_.File("f.bin"), tokens, 1000, "").ok());
  auto shard = TokenShard::Open(dir_.File("f.bin"));
  ASSERT_TRUE(shard.ok());
  EXPECT_EQ((*shard)->FirstTokenAtLeast(1000), std::nullopt);
  EXPECT_EQ((*shard)->FirstTokenAtLeast(900), 150001u);
  EXPECT_EQ((*shard)->FirstTokenAtLeast(3), 0u);
}

TEST(ShardFormatTest, ParsesNames) {
  for (const char* name : {"auto", "dyt", "llmc", "raw_u16", "raw_u32"}) {
    auto f = ParseShardFormat(name);
    ASSERT_TRUE(f.ok()) << name;
    EXPECT_STREQ(ShardFormatName(*f), name);
  }
  auto bad = ParseShardFormat("npy");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown shard format 'npy'"));
}

}  // namespace
}  // namespace dyt
