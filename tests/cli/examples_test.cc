// Every job spec in examples/jobs/ parses and passes the scheduler's own validation; the KJV
// data paths resolve into the repository's data/kjv; the DyT/RMSNorm pair differs only in
// name and norm.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "scheduler/job_spec_validator.h"
#include "services/cli/job_spec_yaml.h"

namespace dyt::cli {
namespace {

const std::string kJobs = std::string(DYT_SOURCE_DIR) + "/examples/jobs";

TEST(ExamplesTest, EveryJobSpecPassesTheServersValidation) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(kJobs)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path().string());
  }
  ASSERT_GE(files.size(), 4u);
  JobSpecValidator any_path;
  for (const auto& path : files) {
    auto file = LoadJobSpecFile(path, "example-user");
    ASSERT_TRUE(file.ok()) << file.status().message();
    Status s = any_path.Validate(file->spec);
    EXPECT_TRUE(s.ok()) << path << ": " << AttributeServerError(*file, s.message());
  }
}

TEST(ExamplesTest, KjvJobsReadTheRepositorysPreparedCorpus) {
  JobSpecValidatorOptions options;
  options.data_roots = {std::string(DYT_SOURCE_DIR) + "/data"};
  JobSpecValidator under_data(options);
  const std::string kjv = std::string(DYT_SOURCE_DIR) + "/data/kjv/";
  for (const char* name : {"kjv-dyt-tiny.yaml", "kjv-rmsnorm-tiny.yaml"}) {
    auto file = LoadJobSpecFile(kJobs + "/" + name, "example-user");
    ASSERT_TRUE(file.ok()) << file.status().message();
    EXPECT_TRUE(under_data.Validate(file->spec).ok()) << name;
    EXPECT_EQ(file->spec.data().train_paths(0), kjv + "train.bin");
    EXPECT_EQ(file->spec.data().val_paths(0), kjv + "val.bin");
    EXPECT_EQ(file->spec.data().tokenizer_path(), kjv + "tokenizer.model");
  }
}

TEST(ExamplesTest, DytAndRmsnormPairDifferOnlyInNameAndNorm) {
  auto dyt = LoadJobSpecFile(kJobs + "/kjv-dyt-tiny.yaml", "u");
  auto rms = LoadJobSpecFile(kJobs + "/kjv-rmsnorm-tiny.yaml", "u");
  ASSERT_TRUE(dyt.ok() && rms.ok());
  EXPECT_EQ(dyt->spec.model().norm(), "dyt");
  EXPECT_EQ(rms->spec.model().norm(), "rmsnorm");
  v1::JobSpec a = dyt->spec, b = rms->spec;
  b.set_name(a.name());
  b.mutable_model()->set_norm(a.model().norm());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a, b));
}

TEST(ExamplesTest, GpuJobAsksEightGpuRanksOfThe1bPreset) {
  auto file = LoadJobSpecFile(kJobs + "/gpu-1b-dyt.yaml", "u");
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->spec.model().preset(), "1b");
  EXPECT_EQ(file->spec.resources().kind(), "gpu");
  EXPECT_EQ(file->spec.resources().ranks(), 8);
}

}  // namespace
}  // namespace dyt::cli
