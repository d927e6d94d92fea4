// The data loader: window layout, determinism, rank split, exact resume, validation, and
// every way Open must refuse bad input (with a message that names the problem).
#include "trainer/data/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "common/sha256.h"
#include "tests/data/test_util.h"
#include "trainer/data/permutation.h"
#include "trainer/data/shard_writer.h"

namespace dyt {
namespace {

using ::testing::HasSubstr;

// Token i of the stream is i, so a window's first input says where it starts.
constexpr int kVocab = 100000;

class LoaderTest : public ::testing::Test {
 protected:
  // Writes a shard holding tokens [first, first + count).
  std::string Shard(const std::string& name, int first, int count, uint32_t vocab = kVocab,
                    const std::string& tokenizer_id = "") {
    std::vector<int32_t> tokens(count);
    std::iota(tokens.begin(), tokens.end(), first);
    const std::string path = dir_.File(name);
    EXPECT_TRUE(WriteShard(path, tokens, vocab, tokenizer_id).ok());
    return path;
  }

  DataConfig Config(std::vector<std::string> train) {
    DataConfig c;
    c.train_paths = std::move(train);
    return c;
  }

  static std::unique_ptr<DataLoader> MustOpen(const DataConfig& config, int seq_len, int rank = 0,
                                              int world = 1, int vocab = kVocab) {
    auto loader = DataLoader::Open(config, seq_len, vocab, rank, world);
    EXPECT_TRUE(loader.ok()) << loader.status().ToString();
    return loader.ok() ? std::move(*loader) : nullptr;
  }

  static Status OpenError(const DataConfig& config, int seq_len, int vocab = kVocab, int rank = 0,
                          int world = 1) {
    auto loader = DataLoader::Open(config, seq_len, vocab, rank, world);
    EXPECT_FALSE(loader.ok()) << "Open succeeded but should fail";
    return loader.ok() ? Status::Ok() : loader.status();
  }

  // The start offsets of the next `n` windows (batch of n), checking each row's layout.
  static std::vector<int32_t> NextStarts(DataLoader& loader, int n) {
    const int t = loader.seq_len();
    std::vector<int32_t> in(static_cast<size_t>(n) * t), tg(in.size());
    loader.NextBatch(n, in.data(), tg.data());
    std::vector<int32_t> starts;
    for (int b = 0; b < n; ++b) {
      for (int j = 0; j < t; ++j) {
        EXPECT_EQ(in[b * t + j], in[b * t] + j);
        EXPECT_EQ(tg[b * t + j], in[b * t] + j + 1);
      }
      starts.push_back(in[b * t]);
    }
    return starts;
  }

  testing::ScratchDir dir_;
};

TEST_F(LoaderTest, WindowsAreStrideTOverAllShardsAndTargetsAreShifted) {
  // 101 tokens in two shards, T = 10: windows start at 0, 10, ..., 90; the one at 40 runs
  // across the shard boundary at 50.
  auto loader = MustOpen(Config({Shard("a.bin", 0, 50), Shard("b.bin", 50, 51)}), 10);
  ASSERT_TRUE(loader);
  EXPECT_EQ(loader->windows_per_epoch(), 10u);
  EXPECT_EQ(loader->num_train_tokens(), 101u);
  std::vector<int32_t> starts = NextStarts(*loader, 10);  // checks contents row by row
  std::sort(starts.begin(), starts.end());
  EXPECT_EQ(starts, (std::vector<int32_t>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}));
  EXPECT_EQ(loader->position(), (LoaderPosition{1, 0, 1234}));
}

TEST_F(LoaderTest, FollowsTheSeededPermutation) {
  DataConfig config = Config({Shard("a.bin", 0, 1001)});
  config.seed = 99;
  auto loader = MustOpen(config, 10);
  ASSERT_TRUE(loader);
  const auto perm = EpochPermutation(100, 99, 0);
  const auto starts = NextStarts(*loader, 100);
  for (int k = 0; k < 100; ++k) EXPECT_EQ(starts[k], static_cast<int32_t>(perm[k] * 10));
}

TEST_F(LoaderTest, SameSeedSameOrderDifferentSeedDifferentOrder) {
  DataConfig config = Config({Shard("a.bin", 0, 5000)});
  auto a = MustOpen(config, 16);
  auto b = MustOpen(config, 16);
  config.seed = 4321;
  auto c = MustOpen(config, 16);
  ASSERT_TRUE(a && b && c);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 5; ++i) {
    for (int32_t s : NextStarts(*a, 8)) sa.push_back(s);
    for (int32_t s : NextStarts(*b, 8)) sb.push_back(s);
    for (int32_t s : NextStarts(*c, 8)) sc.push_back(s);
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST_F(LoaderTest, RanksAreDisjointAndTogetherCoverTheEpoch) {
  // 103 windows over 4 ranks: 25 each, 3 left over.
  const DataConfig config = Config({Shard("a.bin", 0, 103 * 8 + 1)});
  constexpr int kWorld = 4;
  std::set<int32_t> seen;
  const auto perm = EpochPermutation(103, config.seed, 0);
  for (int r = 0; r < kWorld; ++r) {
    auto loader = MustOpen(config, 8, r, kWorld);
    ASSERT_TRUE(loader);
    ASSERT_EQ(loader->windows_per_epoch(), 25u);
    const auto starts = NextStarts(*loader, 25);
    for (int k = 0; k < 25; ++k) {
      EXPECT_EQ(starts[k], static_cast<int32_t>(perm[k * kWorld + r] * 8)) << "rank " << r;
      EXPECT_TRUE(seen.insert(starts[k]).second) << "window " << starts[k] << " read twice";
    }
    EXPECT_EQ(loader->position().epoch, 1u);
  }
  EXPECT_EQ(seen.size(), 100u);  // all but the W-1 = 3 leftover windows
  for (int k = 100; k < 103; ++k) EXPECT_FALSE(seen.count(static_cast<int32_t>(perm[k] * 8)));
}

TEST_F(LoaderTest, EpochsReshuffle) {
  auto loader = MustOpen(Config({Shard("a.bin", 0, 401)}), 4);
  ASSERT_TRUE(loader);
  auto e0 = NextStarts(*loader, 100);
  EXPECT_EQ(loader->position(), (LoaderPosition{1, 0, 1234}));
  auto e1 = NextStarts(*loader, 100);
  EXPECT_NE(e0, e1);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e0, e1);  // each epoch visits every window once
}

TEST_F(LoaderTest, RestoreResumesExactly) {
  // 50 windows, batches of 4: reading 3 batches, then 12 more crosses into epoch 1 midway.
  const DataConfig config = Config({Shard("a.bin", 0, 30), Shard("b.bin", 30, 471)});
  for (int rank = 0; rank < 2; ++rank) {
    auto original = MustOpen(config, 5, rank, 2);
    ASSERT_TRUE(original);
    for (int i = 0; i < 3; ++i) NextStarts(*original, 4);
    const LoaderPosition saved = original->position();
    EXPECT_EQ(saved, (LoaderPosition{0, 12, 1234}));
    std::vector<int32_t> continued;
    for (int i = 0; i < 12; ++i) {
      for (int32_t s : NextStarts(*original, 4)) continued.push_back(s);
    }
    auto resumed = MustOpen(config, 5, rank, 2);
    ASSERT_TRUE(resumed);
    ASSERT_TRUE(resumed->Restore(saved).ok());
    EXPECT_EQ(resumed->position(), saved);
    std::vector<int32_t> replay;
    for (int i = 0; i < 12; ++i) {
      for (int32_t s : NextStarts(*resumed, 4)) replay.push_back(s);
    }
    EXPECT_EQ(replay, continued) << "rank " << rank;
    EXPECT_EQ(resumed->position(), original->position());
  }
}

TEST_F(LoaderTest, RestoreAdoptsTheSavedSeedAndRejectsBadIndex) {
  DataConfig config = Config({Shard("a.bin", 0, 801)});
  config.seed = 7;
  auto a = MustOpen(config, 8);
  ASSERT_TRUE(a);
  NextStarts(*a, 3);
  const LoaderPosition saved = a->position();
  config.seed = 8;  // a changed config must not change the order of a resumed run
  auto b = MustOpen(config, 8);
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->Restore(saved).ok());
  EXPECT_EQ(NextStarts(*b, 10), NextStarts(*a, 10));

  const Status s = b->Restore({0, 100, 7});
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("past this rank's 100 windows per epoch"));
}

TEST_F(LoaderTest, ValFractionHoldsOutTheTail) {
  DataConfig config = Config({Shard("a.bin", 0, 600), Shard("b.bin", 600, 400)});
  config.val_fraction = 0.1;  // the last 100 tokens
  auto loader = MustOpen(config, 9);
  ASSERT_TRUE(loader);
  EXPECT_EQ(loader->num_train_tokens(), 900u);
  EXPECT_EQ(loader->num_val_tokens(), 100u);
  EXPECT_EQ(loader->windows_per_epoch(), 99u);                      // (900 - 1) / 9
  for (int32_t s : NextStarts(*loader, 99)) EXPECT_LE(s + 9, 899);  // never reads the tail
  ASSERT_EQ(loader->num_val_windows(), 11);                         // (100 - 1) / 9
  EXPECT_EQ(loader->num_val_batches(4), 2);
  std::vector<int32_t> in(4 * 9), tg(4 * 9), in2(4 * 9), tg2(4 * 9);
  ASSERT_TRUE(loader->ValidationBatch(1, 4, in.data(), tg.data()).ok());
  EXPECT_EQ(in[0], 900 + 4 * 9);              // windows in order: batch 1 starts at window 4
  EXPECT_EQ(tg[9 * 3 + 8], 900 + 7 * 9 + 9);  // row 3 is window 7; its last target
  NextStarts(*loader, 5);                     // training reads do not move validation
  ASSERT_TRUE(loader->ValidationBatch(1, 4, in2.data(), tg2.data()).ok());
  EXPECT_EQ(in, in2);
  EXPECT_EQ(tg, tg2);
  const Status s = loader->ValidationBatch(2, 4, in.data(), tg.data());
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("past this rank's 11 validation windows"));
}

TEST_F(LoaderTest, ValPathsSplitAcrossRanksAndThinEvenly) {
  DataConfig config = Config({Shard("train.bin", 0, 1000)});
  config.val_paths = {Shard("val.bin", 50000, 1001)};  // 100 windows of T = 10
  config.max_val_windows = 10;                         // every 10th window
  std::vector<int32_t> all;
  for (int r = 0; r < 2; ++r) {
    auto loader = MustOpen(config, 10, r, 2);
    ASSERT_TRUE(loader);
    ASSERT_EQ(loader->num_val_windows(), 5);
    std::vector<int32_t> in(5 * 10), tg(5 * 10);
    ASSERT_TRUE(loader->ValidationBatch(0, 5, in.data(), tg.data()).ok());
    for (int b = 0; b < 5; ++b) all.push_back(in[b * 10]);
  }
  std::sort(all.begin(), all.end());
  std::vector<int32_t> expected;
  for (int k = 0; k < 10; ++k) expected.push_back(50000 + k * 100);
  EXPECT_EQ(all, expected);
}

TEST_F(LoaderTest, ReadsLlmcAndRawShards) {
  std::vector<uint32_t> tokens(200);
  std::iota(tokens.begin(), tokens.end(), 0u);
  testing::WriteLlmcShard(dir_.File("llmc.bin"), 20240520, 1, tokens);
  auto llmc = MustOpen(Config({dir_.File("llmc.bin")}), 10, 0, 1, 50257);
  ASSERT_TRUE(llmc);
  EXPECT_EQ(llmc->windows_per_epoch(), 19u);

  testing::WriteRawShard(dir_.File("train.bin"), 2, tokens);
  DataConfig raw = Config({dir_.File("train.bin")});
  raw.format = "raw_u16";
  auto loader = MustOpen(raw, 10, 0, 1, 50257);
  ASSERT_TRUE(loader);
  NextStarts(*loader, 19);
}

TEST_F(LoaderTest, ExpandsGlobPatternsInSortedOrder) {
  Shard("part_1.bin", 100, 100);
  Shard("part_0.bin", 0, 100);
  auto loader = MustOpen(Config({dir_.File("part_*.bin")}), 10);
  ASSERT_TRUE(loader);
  EXPECT_EQ(loader->num_train_tokens(), 200u);
  for (int32_t s : NextStarts(*loader, 19)) EXPECT_EQ(s % 10, 0);  // contiguous stream 0..199
  const Status s = OpenError(Config({dir_.File("nothing_*.bin")}), 10);
  EXPECT_THAT(s.message(), HasSubstr("matches no files"));
}

// --- Bad input: each rejected with a message that names the problem. ---

TEST_F(LoaderTest, RejectsNoFiles) {
  const Status s = OpenError(Config({}), 10);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no training files"));
  EXPECT_EQ(OpenError(Config({dir_.File("missing.bin")}), 10).code(), StatusCode::kNotFound);
}

TEST_F(LoaderTest, RejectsEmptyCorpus) {
  const Status s = OpenError(Config({Shard("e1.bin", 0, 0), Shard("e2.bin", 0, 0)}), 10);
  EXPECT_THAT(s.message(), HasSubstr("empty corpus: the 2 training shard(s) hold no tokens"));
}

TEST_F(LoaderTest, RejectsTruncatedShard) {
  const std::string path = Shard("t.bin", 0, 500);
  ASSERT_EQ(::truncate(path.c_str(), 256 + 4 * 400), 0);  // kVocab > 65536: 4-byte tokens
  const Status s = OpenError(Config({path}), 10);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
  EXPECT_THAT(s.message(), HasSubstr(path));
}

TEST_F(LoaderTest, RejectsCorruptHeader) {
  const std::string path = Shard("c.bin", 0, 500);
  std::string bytes = testing::ReadFile(path);
  bytes[24] ^= 0x40;  // vocab_size
  testing::WriteFile(path, bytes);
  EXPECT_THAT(OpenError(Config({path}), 10).message(), HasSubstr("corrupt header"));
}

TEST_F(LoaderTest, RejectsVocabMismatchFromHeader) {
  const Status s = OpenError(Config({Shard("v.bin", 0, 500, 5000)}), 10, 4096);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("vocab mismatch"));
  EXPECT_THAT(s.message(), HasSubstr("vocab_size 5000, larger than the model's vocab_size 4096"));
}

TEST_F(LoaderTest, RejectsTokenOutsideModelVocab) {
  std::vector<uint32_t> tokens(300, 7);
  tokens[123] = 4096;
  testing::WriteRawShard(dir_.File("raw.bin"), 2, tokens);
  DataConfig config = Config({dir_.File("raw.bin")});
  config.format = "raw_u16";
  const Status s = OpenError(config, 10, 4096);
  EXPECT_THAT(s.message(), HasSubstr("vocab mismatch"));
  EXPECT_THAT(s.message(),
              HasSubstr("token id 4096 at position 123, outside the model's vocab_size 4096"));
}

TEST_F(LoaderTest, RejectsWindowLongerThanData) {
  const DataConfig config = Config({Shard("s.bin", 0, 64)});
  const Status s = OpenError(config, 64);  // needs 65 tokens
  EXPECT_THAT(s.message(), HasSubstr("training data too short"));
  EXPECT_THAT(s.message(), HasSubstr("windows of 65 tokens"));
  EXPECT_THAT(s.message(), HasSubstr("has 64 tokens"));
  // Enough for one window, but not for one per rank.
  EXPECT_THAT(OpenError(config, 32, kVocab, 0, 2).message(), HasSubstr("training data too short"));
  EXPECT_TRUE(MustOpen(config, 63));
}

TEST_F(LoaderTest, RejectsValidationShorterThanAWindow) {
  DataConfig config = Config({Shard("t.bin", 0, 1000)});
  config.val_fraction = 0.01;  // 10 tokens
  EXPECT_THAT(OpenError(config, 10).message(), HasSubstr("validation data too short"));
  config.val_paths = {Shard("v.bin", 0, 100)};
  EXPECT_THAT(OpenError(config, 10).message(), HasSubstr("val_paths or val_fraction, not both"));
}

TEST_F(LoaderTest, ChecksTokenizerId) {
  testing::WriteFile(dir_.File("tok.model"), "model A bytes");
  testing::WriteFile(dir_.File("other.model"), "model B bytes");
  const std::string id_a = Sha256Hex("model A bytes");
  DataConfig config = Config({Shard("a.bin", 0, 500, kVocab, id_a)});
  config.tokenizer_path = dir_.File("tok.model");
  EXPECT_TRUE(MustOpen(config, 10));

  config.tokenizer_path = dir_.File("other.model");
  const Status s = OpenError(config, 10);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tokenizer mismatch"));
  EXPECT_THAT(s.message(), HasSubstr(id_a));
  EXPECT_THAT(s.message(), HasSubstr(Sha256Hex("model B bytes")));

  config.tokenizer_path = dir_.File("absent.model");
  EXPECT_EQ(OpenError(config, 10).code(), StatusCode::kNotFound);
}

TEST_F(LoaderTest, ReportsTheDataTokenizerAndRefusesShardsOfTwoTokenizers) {
  const std::string id_a = Sha256Hex("model A bytes"), id_b = Sha256Hex("model B bytes");
  testing::WriteFile(dir_.File("tok.model"), "model A bytes");
  const std::string a = Shard("a.bin", 0, 500, kVocab, id_a);
  const std::string unknown = Shard("unknown.bin", 500, 500);  // records no id
  const std::string b = Shard("b.bin", 1000, 500, kVocab, id_b);

  // Without tokenizer_path the shards' one recorded id is the data's tokenizer.
  DataConfig config = Config({unknown, a});
  config.val_paths = {Shard("val.bin", 0, 100, kVocab, id_a)};
  auto loader = MustOpen(config, 10);
  ASSERT_TRUE(loader);
  EXPECT_EQ(loader->tokenizer_id(), id_a);
  config.tokenizer_path = dir_.File("tok.model");
  loader = MustOpen(config, 10);
  ASSERT_TRUE(loader);
  EXPECT_EQ(loader->tokenizer_id(), id_a);
  EXPECT_EQ(MustOpen(Config({unknown}), 10)->tokenizer_id(), "");

  // Two tokenizers among the training shards, or between training and validation: refused,
  // naming both shards and both ids.
  for (const auto& [train, val] : {std::pair<std::vector<std::string>, std::string>{{a, b}, ""},
                                   {{a, unknown}, Shard("val_b.bin", 0, 100, kVocab, id_b)}}) {
    DataConfig mixed = Config(train);
    if (!val.empty()) mixed.val_paths = {val};
    const Status s = OpenError(mixed, 10);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("tokenizer mismatch: shard " + a));
    EXPECT_THAT(s.message(), HasSubstr(id_a));
    EXPECT_THAT(s.message(), HasSubstr(id_b));
    EXPECT_THAT(s.message(), HasSubstr(val.empty() ? b : val));
  }
}

// data.roots (the scheduler's --data-root, passed on by the worker): files are checked as what
// they resolve to, after glob expansion, so a symlink under a root cannot lead out of it.
TEST_F(LoaderTest, DataRootsHoldForGlobMatchesSymlinksAndTheTokenizer) {
  const std::string root = dir_.File("root"), outside = dir_.File("outside");
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  const std::string inside = Shard("root/in.bin", 0, 500);
  const std::string secret = Shard("outside/secret.bin", 0, 500);
  ASSERT_EQ(::symlink(secret.c_str(), (root + "/link.bin").c_str()), 0);
  testing::WriteFile(outside + "/tok.model", "not really a model");

  DataConfig config = Config({root + "/in*"});
  config.roots = {root};
  EXPECT_TRUE(MustOpen(config, 10));

  config.train_paths = {root + "/l*"};
  Status s = OpenError(config, 10);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("train_paths: " + root + "/link.bin resolves to " + secret +
                                     ", outside the data roots (" + root + ")"));

  config.train_paths = {inside};
  config.val_paths = {secret};
  EXPECT_THAT(OpenError(config, 10).message(), HasSubstr("val_paths: " + secret));
  config.val_paths.clear();
  config.tokenizer_path = outside + "/tok.model";
  EXPECT_THAT(OpenError(config, 10).message(), HasSubstr("tokenizer_path: " + outside));
  config.tokenizer_path.clear();
  config.roots = {dir_.File("no-such-root")};
  EXPECT_THAT(OpenError(config, 10).message(), HasSubstr("roots: " + dir_.File("no-such-root")));
  config.roots.clear();  // no roots: any path
  config.train_paths = {root + "/l*"};
  EXPECT_TRUE(MustOpen(config, 10));
}

TEST_F(LoaderTest, RejectsBadArguments) {
  const DataConfig config = Config({Shard("a.bin", 0, 100)});
  EXPECT_THAT(OpenError(config, 0).message(), HasSubstr("seq_len"));
  EXPECT_THAT(OpenError(config, 10, kVocab, 2, 2).message(), HasSubstr("rank 2 is not in [0, 2)"));
  DataConfig bad_format = config;
  bad_format.format = "parquet";
  EXPECT_THAT(OpenError(bad_format, 10).message(), HasSubstr("unknown shard format"));
}

}  // namespace
}  // namespace dyt
