// Job spec YAML: every field, positions, unknown keys and type errors with file:line:column,
// relative data paths, --set overrides, and server errors mapped back to lines.
#include "services/cli/job_spec_yaml.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

namespace dyt::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr char kEveryField[] = R"(name: every-field
owner: alice
priority: 7
max_restarts: 3
model:
  preset: tiny
  norm: rmsnorm
  vocab_size: 4096
  dim: 256
  n_layers: 4
  n_heads: 4
  n_kv_heads: 2
  ffn_dim: 688
  max_seq_len: 128
  rope_theta: 10000.5
  tie_embeddings: false
  alpha0_attn: 0.8
  alpha0_ffn: 0.6
  alpha0_final: 0.4
  dyt_bias: true
  embed_scale: false
  init_std: 0.05
  multiple_of: 64
  norm_eps: 1.0e-6
data:
  train_paths:
    - shards/train-*.bin
    - /abs/train-2.bin
  val_paths: ../val.bin
  tokenizer_path: tok/tokenizer.model
  format: dyt
  seed: 18446744073709551615
  val_fraction: 0.05
  synthetic: true
  max_val_windows: 512
optimizer:
  lr: 0.003
  min_lr: 0.0003
  warmup_steps: 30
  beta1: 0.9
  beta2: 0.95
  eps: 1.0e-8
  weight_decay: 0.1
  grad_clip: 1.0
  no_decay_norms: true
  decay_steps: 250
train:
  steps: 300
  batch_size: 16
  grad_accum: 2
  seq_len: 128
  seed: 1234
  log_every: 10
  eval_every: 50
  eval_batches: 4
  recompute: true
  deterministic: false
  zero1: true
resources:
  ranks: 2
  slots_per_rank: 3
  kind: cpu
checkpoint:
  every_steps: 100
  every_minutes: 15
  keep_last: 3
  keep_every_steps: 1000
stall_timeout_s: 900
time_limit_s: 7200
init_from_job: job-000000000001
init_from_step: 100
init_from_weights_only: true
)";

StatusOr<JobSpecFile> Parse(const std::string& text, const std::string& owner = "bob") {
  JobSpecParseOptions options;
  options.default_owner = owner;
  options.base_dir = "/jobs/dir";
  return ParseJobSpecYaml(text, "job.yaml", options);
}

// Every field of `m`, recursively, is set to something other than its default.
void ExpectEveryFieldSet(const Message& m, const std::string& path) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = path + f->name();
    if (f->is_repeated()) {
      EXPECT_GT(r->FieldSize(m, f), 0) << name;
    } else {
      EXPECT_TRUE(r->HasField(m, f)) << name << " is not set by the every-field YAML";
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        ExpectEveryFieldSet(r->GetMessage(m, f), name + ".");
      }
    }
  }
}

TEST(JobSpecYamlTest, ReadsEveryField) {
  auto file = Parse(kEveryField);
  ASSERT_TRUE(file.ok()) << file.status().message();
  const v1::JobSpec& s = file->spec;
  ExpectEveryFieldSet(s, "");
  EXPECT_EQ(s.name(), "every-field");
  EXPECT_EQ(s.owner(), "alice");
  EXPECT_EQ(s.priority(), 7);
  EXPECT_EQ(s.max_restarts(), 3);
  EXPECT_EQ(s.stall_timeout_s(), 900);
  EXPECT_EQ(s.time_limit_s(), 7200);
  EXPECT_EQ(s.init_from_job(), "job-000000000001");
  EXPECT_EQ(s.init_from_step(), 100);
  EXPECT_EQ(s.model().preset(), "tiny");
  EXPECT_EQ(s.model().norm(), "rmsnorm");
  EXPECT_EQ(s.model().n_kv_heads(), 2);
  EXPECT_FLOAT_EQ(s.model().rope_theta(), 10000.5f);
  EXPECT_TRUE(s.model().has_tie_embeddings());
  EXPECT_FALSE(s.model().tie_embeddings());
  EXPECT_TRUE(s.model().dyt_bias());
  EXPECT_FLOAT_EQ(s.model().alpha0_final(), 0.4f);
  EXPECT_EQ(s.model().multiple_of(), 64);
  EXPECT_EQ(s.data().max_val_windows(), 512);
  EXPECT_EQ(s.optimizer().decay_steps(), 250);
  EXPECT_TRUE(s.train().zero1());
  EXPECT_FLOAT_EQ(s.model().init_std(), 0.05f);
  ASSERT_EQ(s.data().train_paths_size(), 2);
  EXPECT_EQ(s.data().train_paths(0), "/jobs/dir/shards/train-*.bin");
  EXPECT_EQ(s.data().train_paths(1), "/abs/train-2.bin");
  ASSERT_EQ(s.data().val_paths_size(), 1);
  EXPECT_EQ(s.data().val_paths(0), "/jobs/val.bin");
  EXPECT_EQ(s.data().tokenizer_path(), "/jobs/dir/tok/tokenizer.model");
  EXPECT_EQ(s.data().seed(), 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(s.data().val_fraction(), 0.05);
  EXPECT_FLOAT_EQ(s.optimizer().eps(), 1e-8f);
  EXPECT_TRUE(s.optimizer().no_decay_norms());
  EXPECT_EQ(s.train().steps(), 300);
  EXPECT_EQ(s.train().batch_size(), 16);
  EXPECT_EQ(s.train().seed(), 1234u);
  EXPECT_TRUE(s.train().recompute());
  ASSERT_TRUE(s.train().has_deterministic());  // optional: presence kept (unset means true)
  EXPECT_FALSE(s.train().deterministic());
  EXPECT_EQ(s.resources().kind(), "cpu");
  EXPECT_EQ(s.resources().slots_per_rank(), 3);
  EXPECT_EQ(s.checkpoint().keep_every_steps(), 1000);

  EXPECT_EQ(file->Locate("train.batch_size"), "job.yaml:49");
  EXPECT_EQ(file->Locate("data.train_paths[1]"), "job.yaml:28");
  EXPECT_EQ(file->Locate("data.train_paths[7]"), "job.yaml:26");  // falls back to the list
  EXPECT_EQ(file->Locate("checkpoint.nothing"), "job.yaml:63");   // ... or the section
  EXPECT_EQ(file->Locate("nothing"), std::nullopt);
}

TEST(JobSpecYamlTest, OwnerDefaultsToTheGivenOne) {
  auto file = Parse("name: x\nmodel: {preset: test}\n", "carol");
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->spec.owner(), "carol");
  auto explicit_owner = Parse("name: x\nowner: dave\n", "carol");
  ASSERT_TRUE(explicit_owner.ok());
  EXPECT_EQ(explicit_owner->spec.owner(), "dave");
}

TEST(JobSpecYamlTest, UnknownKeysAreNamedWithTheirPosition) {
  auto nested = Parse("name: x\ntrain:\n  steps: 3\n  batchsize: 3\n");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(nested.status().message(),
            "job.yaml:4:3: train.batchsize: unknown field (fields of train: steps, batch_size, "
            "grad_accum, seq_len, seed, log_every, eval_every, eval_batches, recompute, "
            "deterministic, zero1)");
  auto top = Parse("name: x\nmodle:\n  preset: tiny\n");
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().message().rfind("job.yaml:2:1: modle: unknown field (sections and "
                                         "fields: name, owner, model, ",
                                         0),
            0u)
      << top.status().message();
  auto dup = Parse("name: x\nname: y\n");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "job.yaml:2:1: name: duplicate key");
  // A second document (even one with an unknown key) is not silently ignored.
  auto two = Parse("name: x\n---\nbogus: 1\n");
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().message(),
            "job.yaml:3:1: a job spec is one YAML document; this file has 2 (remove the '---' "
            "separators)");
}

TEST(JobSpecYamlTest, TypeErrorsNameFieldRuleAndValue) {
  struct Case {
    const char* yaml;
    const char* message;
  };
  const Case cases[] = {
      {"train:\n  steps: abc\n", "job.yaml:2:10: train.steps: must be an integer (got 'abc')"},
      {"train:\n  steps: 1.5\n", "job.yaml:2:10: train.steps: must be an integer (got '1.5')"},
      // Digits that overflow the field's type: the scheduler's range for the field, where it
      // has one (common/job_spec_limits.h), else the type's.
      {"train:\n  batch_size: 3000000000\n",
       "job.yaml:2:15: train.batch_size: must be an integer between 1 and 1048576 "
       "(got '3000000000')"},
      {"train:\n  steps: 99999999999999999999\n",
       "job.yaml:2:10: train.steps: must be an integer between 1 and 1099511627776 (got "
       "'99999999999999999999')"},
      {"priority: -99999999999\n",
       "job.yaml:1:11: priority: must be an integer between 0 and 1000 (got '-99999999999')"},
      {"train:\n  log_every: 3000000000\n",
       "job.yaml:2:14: train.log_every: must be an integer between -2147483648 and 2147483647 "
       "(got '3000000000')"},
      {"data:\n  seed: -1\n", "job.yaml:2:9: data.seed: must be a non-negative integer (got '-1')"},
      {"data:\n  seed: 18446744073709551616\n",
       "job.yaml:2:9: data.seed: must be an integer between 0 and 18446744073709551615 (got "
       "'18446744073709551616')"},
      {"data:\n  synthetic: maybe\n",
       "job.yaml:2:14: data.synthetic: must be true or false (got 'maybe')"},
      {"optimizer:\n  lr: fast\n", "job.yaml:2:7: optimizer.lr: must be a number (got 'fast')"},
      {"optimizer:\n  lr: 1e99\n",
       "job.yaml:2:7: optimizer.lr: must be a number within float range (got '1e99')"},
      {"model: tiny\n", "job.yaml:1:8: model: must be a map of fields"},
      {"name: [a, b]\n", "job.yaml:1:7: name: must be a string"},
      {"data:\n  train_paths: {a: 1}\n",
       "job.yaml:2:16: data.train_paths: must be a string or a list of them"},
      {"data:\n  train_paths: [a, [b]]\n", "job.yaml:2:20: data.train_paths[1]: must be a string"},
      {"- a\n- b\n", "job.yaml:1:1: job spec: must be a map of fields"},
  };
  for (const auto& c : cases) {
    auto file = Parse(c.yaml);
    ASSERT_FALSE(file.ok()) << c.yaml;
    EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(file.status().message(), c.message) << c.yaml;
  }
}

TEST(JobSpecYamlTest, SyntaxErrorsHaveLineAndColumn) {
  auto file = Parse("name: x\ntrain: [\n  steps: 3\n");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message().rfind("job.yaml:4:1: YAML syntax error: ", 0), 0u)
      << file.status().message();
  auto empty = Parse("");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("job.yaml: empty job spec"), std::string::npos);
}

TEST(JobSpecYamlTest, LoadResolvesDataPathsAgainstTheFilesDirectory) {
  auto file = LoadJobSpecFile(DYT_SOURCE_DIR "/examples/jobs/kjv-dyt-tiny.yaml", "eve");
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->spec.data().train_paths(0), std::string(DYT_SOURCE_DIR) + "/data/kjv/train.bin");
  auto missing = LoadJobSpecFile("/nonexistent/job.yaml", "eve");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "/nonexistent/job.yaml: cannot open the job spec file (No such file or directory)");
}

TEST(JobSpecYamlTest, OverridesSetFieldsByPath) {
  auto file = Parse("name: x\ntrain:\n  steps: 3\n");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(ApplyJobSpecOverride("train.steps=100", *file).ok());
  ASSERT_TRUE(ApplyJobSpecOverride("model.norm=rmsnorm", *file).ok());
  ASSERT_TRUE(ApplyJobSpecOverride("model.tie_embeddings=true", *file).ok());
  ASSERT_TRUE(ApplyJobSpecOverride("data.train_paths=[a.bin, /b.bin]", *file).ok());
  EXPECT_EQ(file->spec.train().steps(), 100);
  EXPECT_EQ(file->spec.model().norm(), "rmsnorm");
  EXPECT_TRUE(file->spec.model().tie_embeddings());
  ASSERT_EQ(file->spec.data().train_paths_size(), 2);
  EXPECT_EQ(file->spec.data().train_paths(0),
            (std::filesystem::current_path() / "a.bin").lexically_normal().string());
  EXPECT_EQ(file->spec.data().train_paths(1), "/b.bin");
  ASSERT_TRUE(ApplyJobSpecOverride("train.steps=", *file).ok());  // back to the default
  EXPECT_EQ(file->spec.train().steps(), 0);

  Status unknown = ApplyJobSpecOverride("train.stepz=1", *file);
  EXPECT_EQ(unknown.message().rfind("--set train.stepz=1: train.stepz: unknown field (fields of "
                                    "train: steps, ",
                                    0),
            0u)
      << unknown.message();
  EXPECT_EQ(ApplyJobSpecOverride("train.steps=many", *file).message(),
            "--set train.steps=many: train.steps: must be an integer (got 'many')");
  EXPECT_EQ(ApplyJobSpecOverride("name.first=x", *file).message(),
            "--set name.first=x: name: is a value, not a section");
  EXPECT_EQ(ApplyJobSpecOverride("steps", *file).message(), "--set steps: expected key=value");
}

TEST(JobSpecYamlTest, ServerErrorsPointAtTheLineOrTheOption) {
  auto file = Parse("name: x\ntrain:\n  steps: 3\n  batch_size: 0\ndata:\n  train_paths: [a, b]\n");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(AttributeServerError(*file, "spec.train.batch_size: must be >= 1 (got 0)"),
            "job.yaml:4: train.batch_size: must be >= 1 (got 0)");
  EXPECT_EQ(AttributeServerError(*file, "spec.data.train_paths[1]: must not contain '..'"),
            "job.yaml:6: data.train_paths[1]: must not contain '..'");
  EXPECT_EQ(AttributeServerError(*file, "spec.owner: required"), "job.yaml: owner: required");
  EXPECT_EQ(AttributeServerError(*file, "spec: at most 1048576 bytes"),
            "job.yaml: at most 1048576 bytes");
  EXPECT_EQ(AttributeServerError(*file, "client_request_id: bad"), "client_request_id: bad");
  NoteOverride(*file, "train.steps", "--steps 0");
  EXPECT_EQ(AttributeServerError(*file, "spec.train.steps: must be between 1 and 2 (got 0)"),
            "--steps 0: train.steps: must be between 1 and 2 (got 0)");
}

}  // namespace
}  // namespace dyt::cli
