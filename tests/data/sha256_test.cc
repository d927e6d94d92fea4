#include "common/sha256.h"

#include <gtest/gtest.h>

#include "tests/data/test_util.h"

namespace dyt {
namespace {

// FIPS 180-2 test vectors.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FileMatchesBytes) {
  testing::ScratchDir dir;
  const std::string bytes(3 << 20, 'x');  // spans several read chunks
  testing::WriteFile(dir.File("f"), bytes);
  auto hex = Sha256FileHex(dir.File("f"));
  ASSERT_TRUE(hex.ok()) << hex.status().ToString();
  EXPECT_EQ(*hex, Sha256Hex(bytes));
}

TEST(Sha256Test, MissingFileFails) {
  auto hex = Sha256FileHex("/nonexistent/dyt/file");
  ASSERT_FALSE(hex.ok());
  EXPECT_NE(hex.status().message().find("/nonexistent/dyt/file"), std::string::npos);
}

}  // namespace
}  // namespace dyt
