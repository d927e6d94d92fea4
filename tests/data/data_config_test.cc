#include "trainer/data/data_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dyt {
namespace {

using ::testing::HasSubstr;

StatusOr<DataConfig> Parse(const std::string& yaml) {
  DYT_ASSIGN_OR_RETURN(YAML::Node node, LoadYamlString(yaml));
  YamlReader reader(node, "data");
  DataConfig config;
  DYT_RETURN_IF_ERROR(ReadDataConfig(reader, config));
  return config;
}

TEST(DataConfigTest, ReadsEveryField) {
  auto c = Parse(R"(
train_paths: [a.bin, "b_*.bin"]
val_paths: v.bin
tokenizer_path: tok.model
format: raw_u16
seed: 7
max_val_windows: 64
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->train_paths, (std::vector<std::string>{"a.bin", "b_*.bin"}));
  EXPECT_EQ(c->val_paths, (std::vector<std::string>{"v.bin"}));
  EXPECT_EQ(c->tokenizer_path, "tok.model");
  EXPECT_EQ(c->format, "raw_u16");
  EXPECT_EQ(c->seed, 7u);
  EXPECT_EQ(c->max_val_windows, 64);
}

TEST(DataConfigTest, DefaultsWhenAbsent) {
  auto c = Parse("train_paths: t.bin\nval_fraction: 0.02\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->format, "auto");
  EXPECT_EQ(c->seed, 1234u);
  EXPECT_DOUBLE_EQ(c->val_fraction, 0.02);
}

TEST(DataConfigTest, RejectsBadFields) {
  EXPECT_THAT(Parse("train_path: t.bin\n").status().message(),
              HasSubstr("data.train_path: unknown field"));
  EXPECT_THAT(Parse("val_fraction: 1.5\n").status().message(),
              HasSubstr("data.val_fraction: must be in [0, 1)"));
  EXPECT_THAT(Parse("format: npy\n").status().message(), HasSubstr("data.format"));
  EXPECT_THAT(Parse("train_paths: {a: 1}\n").status().message(),
              HasSubstr("data.train_paths: must be a path or a list of paths"));
}

}  // namespace
}  // namespace dyt
