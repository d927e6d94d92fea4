// Names in the store and the manifest's guard against unsafe file names.
#include <gtest/gtest.h>
#include <unistd.h>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/manifest.h"

namespace dyt {
namespace {

TEST(CheckpointNamesTest, StepDirNamesAreZeroPaddedAndParseBackOnlyWhenCanonical) {
  EXPECT_EQ(StepDirName(123), "step-00000123");
  EXPECT_EQ(StepDirName(0), "step-00000000");
  EXPECT_EQ(StepDirName(123456789), "step-123456789");
  EXPECT_EQ(ParseStepDirName("step-00000123"), 123);
  EXPECT_EQ(ParseStepDirName("step-123456789"), 123456789);
  EXPECT_FALSE(ParseStepDirName("step-123"));  // not canonical: would alias step-00000123
  EXPECT_FALSE(ParseStepDirName("step-0000012x"));
  EXPECT_FALSE(ParseStepDirName(".tmp-step-00000123-42"));
  EXPECT_FALSE(ParseStepDirName("step-"));
  EXPECT_FALSE(ParseStepDirName("latest"));
}

TEST(CheckpointNamesTest, WriterPidIsParsedFromTempAndOldNamesOnly) {
  EXPECT_EQ(ParseWriterPid(".tmp-step-00000123-4242"), 4242);
  EXPECT_EQ(ParseWriterPid(".old-step-00000123-17"), 17);
  EXPECT_EQ(ParseWriterPid(".tmp-latest-99"), 99);
  EXPECT_FALSE(ParseWriterPid("step-00000123"));
  EXPECT_FALSE(ParseWriterPid(".tmp-step-00000123-"));
  EXPECT_FALSE(ParseWriterPid(".tmp-notes"));
  EXPECT_FALSE(ParseWriterPid(".tmp-x-0"));
  EXPECT_EQ(TempName("step-00000001"), ".tmp-step-00000001-" + std::to_string(::getpid()));
  EXPECT_EQ(ParseWriterPid(TempName("latest")), long(::getpid()));
}

TEST(CheckpointNamesTest, BaseNameAndJoinPath) {
  EXPECT_EQ(BaseName("/store/step-00000001/"), "step-00000001");
  EXPECT_EQ(BaseName("/store/step-00000001"), "step-00000001");
  EXPECT_EQ(BaseName("step-00000001"), "step-00000001");
  EXPECT_EQ(JoinPath("/store/", "latest"), "/store/latest");
  EXPECT_EQ(JoinPath("/store", "latest"), "/store/latest");
}

TEST(ManifestTest, RoundTripsAndRejectsUnsafeOrMalformedEntries) {
  Manifest m;
  m.format_version = kCheckpointFormatVersion;
  m.step = 5;
  m.files.push_back({"model.safetensors", 10, std::string(64, 'a')});
  auto back = ParseManifest(ManifestToJson(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->step, 5);
  EXPECT_EQ(back->files, m.files);

  for (const char* bad_name : {"../x", "a/b", "manifest.json", ".."}) {
    Manifest evil = m;
    evil.files[0].name = bad_name;
    auto r = ParseManifest(ManifestToJson(evil));
    ASSERT_FALSE(r.ok()) << bad_name;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("is not allowed"), std::string::npos);
  }
  Manifest short_digest = m;
  short_digest.files[0].sha256 = "abc";
  EXPECT_FALSE(ParseManifest(ManifestToJson(short_digest)).ok());
  Manifest twice = m;
  twice.files.push_back(m.files[0]);
  EXPECT_NE(ParseManifest(ManifestToJson(twice)).status().message().find("listed twice"),
            std::string::npos);
  Manifest future = m;
  future.format_version = 99;
  auto r = ParseManifest(ManifestToJson(future));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("format_version 99 is not supported"), std::string::npos);
  EXPECT_EQ(ParseManifest("{not json").status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace dyt
