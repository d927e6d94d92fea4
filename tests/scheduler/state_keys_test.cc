// Key encodings: job ids sort in number order, a job's records are one contiguous range that
// no other job's records fall into, page tokens round-trip and reject anything else.
#include "scheduler/state_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace dyt {
namespace {

TEST(JobIdTest, FormatsTwelveDigitsAndParsesBack) {
  EXPECT_EQ(FormatJobId(1), "job-000000000001");
  EXPECT_EQ(FormatJobId(9999999999ull), "job-009999999999");
  EXPECT_EQ(FormatJobId(999999999999ull), "job-999999999999");
  for (uint64_t n : {0ull, 1ull, 42ull, 1234567890ull}) EXPECT_EQ(ParseJobId(FormatJobId(n)), n);
  EXPECT_FALSE(ParseJobId("job-1").has_value());
  EXPECT_FALSE(ParseJobId("job-0000000000001").has_value());  // not canonical
  EXPECT_FALSE(ParseJobId("job-0000000000x1").has_value());
  EXPECT_FALSE(ParseJobId("my-job").has_value());
}

TEST(JobIdTest, LexicographicOrderIsNumericOrder) {
  std::vector<uint64_t> numbers = {5, 10, 9, 100, 1, 99999, 1000000, 123456789};
  std::vector<std::string> ids;
  for (uint64_t n : numbers) ids.push_back(FormatJobId(n));
  std::sort(numbers.begin(), numbers.end());
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], FormatJobId(numbers[i]));
}

TEST(StateKeysTest, BigEndianOrderIsNumericOrder) {
  EXPECT_LT(EncodeBigEndian64(255), EncodeBigEndian64(256));
  EXPECT_LT(EncodeBigEndian64(1), EncodeBigEndian64(1ull << 40));
  EXPECT_EQ(DecodeBigEndian64(EncodeBigEndian64(0x0102030405060708ull)), 0x0102030405060708ull);
  EXPECT_FALSE(DecodeBigEndian64("short").has_value());
}

TEST(StateKeysTest, AJobsKeysStayInsideItsPrefixRange) {
  // "job-1" is a prefix of "job-10" as a string, but not of its keys.
  const std::string key10 = JobEventKey("job-10", 0);
  EXPECT_FALSE(key10 >= JobPrefix("job-1") && key10 < JobPrefixEnd("job-1"));
  for (uint64_t seq : {0ull, 1ull, 255ull, ~0ull}) {
    const std::string key = JobEventKey("job-1", seq);
    EXPECT_GE(key, JobPrefix("job-1"));
    EXPECT_LT(key, JobPrefixEnd("job-1"));
    EXPECT_EQ(JobKeySuffixNumber(key, "job-1"), seq);
    EXPECT_FALSE(JobKeySuffixNumber(key, "job-10").has_value());
  }
  EXPECT_EQ(JobKeySuffixNumber(CheckpointKey("j", 300), "j"), 300u);
}

TEST(StateKeysTest, RendezvousAttemptsAreSeparateRanges) {
  const std::string key = RendezvousKey("j", 3, "nccl_id");
  EXPECT_GE(key, RendezvousAttemptPrefix("j", 3));
  EXPECT_LT(key, RendezvousAttemptEnd("j", 3));
  EXPECT_LE(RendezvousAttemptEnd("j", 3), RendezvousAttemptPrefix("j", 4));
  EXPECT_GE(RendezvousKey("j", 4, ""), RendezvousAttemptEnd("j", 3));
}

TEST(StateKeysTest, RecordIdRules) {
  EXPECT_TRUE(CheckRecordId("job id", "job-000000000001").ok());
  const Status empty = CheckRecordId("job id", "");
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.message(), "job id: must not be empty");
  EXPECT_EQ(CheckRecordId("worker.id", std::string("a\0b", 3)).message(),
            "worker.id: must not contain a NUL byte");
  EXPECT_EQ(CheckRecordId("x", std::string(kMaxRecordIdBytes + 1, 'a')).code(),
            StatusCode::kInvalidArgument);
}

TEST(PageTokenTest, RoundTripsAndRejectsForgeries) {
  const std::string token = EncodeJobPageToken("job-000000000042");
  EXPECT_EQ(token.find("job"), std::string::npos);  // opaque: not the id in clear
  auto decoded = DecodeJobPageToken(token);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, "job-000000000042");
  const std::vector<std::string> forgeries = {"xyz", "abc", "6a6f62",
                                              EncodeJobPageToken("") + "00"};
  for (const std::string& bad : forgeries) {
    auto result = DecodeJobPageToken(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(result.status().message().rfind("page_token:", 0), 0u);
  }
}

}  // namespace
}  // namespace dyt
