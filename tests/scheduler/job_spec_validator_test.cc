// Each JobSpecValidator rule: the valid spec passes; breaking one field fails with
// INVALID_ARGUMENT naming that field and the rule.
#include "scheduler/job_spec_validator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "tests/scheduler/service_test_util.h"

namespace dyt {
namespace {

using testing::ValidSpec;

struct Case {
  const char* what;
  std::function<void(v1::JobSpec&)> mutate;
  const char* message;  // expected substring of the error
};

Status ValidateMutated(const std::function<void(v1::JobSpec&)>& mutate,
                       const JobSpecValidator& validator = JobSpecValidator()) {
  v1::JobSpec spec = ValidSpec();
  mutate(spec);
  return validator.Validate(spec);
}

TEST(JobSpecValidatorTest, ValidSpecPasses) {
  EXPECT_TRUE(JobSpecValidator().Validate(ValidSpec()).ok());
  v1::JobSpec synthetic = ValidSpec();
  synthetic.mutable_data()->clear_train_paths();
  synthetic.mutable_data()->set_synthetic(true);
  EXPECT_TRUE(JobSpecValidator().Validate(synthetic).ok());
  v1::JobSpec gpu = ValidSpec();  // tiny: head dimension 256 / 4 = 64, what the GPU runs
  gpu.mutable_model()->set_preset("tiny");
  gpu.mutable_resources()->set_kind("gpu");
  EXPECT_TRUE(JobSpecValidator().Validate(gpu).ok()) << JobSpecValidator().Validate(gpu).ToString();
}

TEST(JobSpecValidatorTest, EachRuleNamesFieldAndRule) {
  const Case cases[] = {
      {"empty name", [](v1::JobSpec& s) { s.set_name(""); },
       "spec.name: required, at most 128 characters of [A-Za-z0-9._-]"},
      {"long name", [](v1::JobSpec& s) { s.set_name(std::string(129, 'a')); },
       "spec.name: required, at most 128 characters of [A-Za-z0-9._-] (got 129 characters)"},
      {"bad name char", [](v1::JobSpec& s) { s.set_name("a b"); },
       "spec.name: required, at most 128 characters of [A-Za-z0-9._-] (got 'a b')"},
      {"non-ascii name",
       [](v1::JobSpec& s) {
         s.set_name(
             "j\xc3\xb6"
             "b");
       },
       "(got 'j\\xc3\\xb6b')"},
      {"empty owner", [](v1::JobSpec& s) { s.set_owner(""); }, "spec.owner: required"},
      {"bad owner char", [](v1::JobSpec& s) { s.set_owner("a/b"); }, "spec.owner: required"},
      {"no model", [](v1::JobSpec& s) { s.clear_model(); }, "spec.model: required"},
      {"no preset", [](v1::JobSpec& s) { s.mutable_model()->set_preset(""); },
       "spec.model.preset: required, one of"},
      {"unknown preset", [](v1::JobSpec& s) { s.mutable_model()->set_preset("gpt-9"); },
       "spec.model.preset: unknown preset 'gpt-9'"},
      {"norm", [](v1::JobSpec& s) { s.mutable_model()->set_norm("layernorm"); },
       "spec.model.norm: must be dyt or rmsnorm (got 'layernorm')"},
      {"negative dim", [](v1::JobSpec& s) { s.mutable_model()->set_dim(-1); },
       "spec.model.dim: must be between 0 and 65536 (got -1)"},
      {"absurd layers", [](v1::JobSpec& s) { s.mutable_model()->set_n_layers(100000); },
       "spec.model.n_layers: must be between 0 and 1024 (got 100000)"},
      {"dim heads",
       [](v1::JobSpec& s) {
         s.mutable_model()->set_dim(100);
         s.mutable_model()->set_n_heads(3);
       },
       "spec.model.dim: must be divisible by spec.model.n_heads (got 100 and 3)"},
      {"nan alpha", [](v1::JobSpec& s) { s.mutable_model()->set_alpha0_attn(std::nanf("")); },
       "spec.model.alpha0_attn: must be a finite number"},
      {"no data",
       [](v1::JobSpec& s) {
         s.mutable_data()->clear_train_paths();
         s.mutable_data()->set_synthetic(false);
       },
       "spec.data: train_paths or synthetic required"},
      {"relative path", [](v1::JobSpec& s) { s.mutable_data()->set_train_paths(0, "data/x"); },
       "spec.data.train_paths[0]: must be an absolute path (got 'data/x')"},
      {"dotdot path",
       [](v1::JobSpec& s) { s.mutable_data()->add_val_paths("/data/../etc/passwd"); },
       "spec.data.val_paths[0]: must not contain '..'"},
      {"empty path", [](v1::JobSpec& s) { s.mutable_data()->add_train_paths(""); },
       "spec.data.train_paths[1]: must not be empty"},
      {"tokenizer path", [](v1::JobSpec& s) { s.mutable_data()->set_tokenizer_path("tok.json"); },
       "spec.data.tokenizer_path: must be an absolute path"},
      {"format", [](v1::JobSpec& s) { s.mutable_data()->set_format("csv"); },
       "spec.data.format: must be auto, dyt, llmc, raw_u16 or raw_u32 (got 'csv')"},
      {"val fraction", [](v1::JobSpec& s) { s.mutable_data()->set_val_fraction(1.0); },
       "spec.data.val_fraction: must be in [0, 1) (got 1)"},
      {"negative lr", [](v1::JobSpec& s) { s.mutable_optimizer()->set_lr(-1); },
       "spec.optimizer.lr: must be in [0, 10] (got -1)"},
      {"min lr", [](v1::JobSpec& s) { s.mutable_optimizer()->set_min_lr(1e-3f); },
       "spec.optimizer.min_lr: must be <= spec.optimizer.lr"},
      {"beta2", [](v1::JobSpec& s) { s.mutable_optimizer()->set_beta2(1.0f); },
       "spec.optimizer.beta2: must be in [0, 1) (got 1)"},
      {"warmup", [](v1::JobSpec& s) { s.mutable_optimizer()->set_warmup_steps(-5); },
       "spec.optimizer.warmup_steps: must be >= 0 (got -5)"},
      {"steps", [](v1::JobSpec& s) { s.mutable_train()->set_steps(0); },
       "spec.train.steps: must be between 1 and"},
      {"batch size", [](v1::JobSpec& s) { s.mutable_train()->set_batch_size(0); },
       "spec.train.batch_size: must be >= 1 (got 0)"},
      {"absurd batch", [](v1::JobSpec& s) { s.mutable_train()->set_batch_size(1 << 30); },
       "spec.train.batch_size: must be between 1 and 1048576"},
      {"grad accum", [](v1::JobSpec& s) { s.mutable_train()->set_grad_accum(-1); },
       "spec.train.grad_accum: must be between 0 and 65536 (got -1)"},
      {"log every", [](v1::JobSpec& s) { s.mutable_train()->set_log_every(-1); },
       "spec.train.log_every: must be >= 0 (got -1)"},
      {"ranks", [](v1::JobSpec& s) { s.mutable_resources()->set_ranks(0); },
       "spec.resources.ranks: must be >= 1 (got 0)"},
      {"absurd ranks", [](v1::JobSpec& s) { s.mutable_resources()->set_ranks(100000); },
       "spec.resources.ranks: must be between 1 and 4096 (got 100000)"},
      {"slots", [](v1::JobSpec& s) { s.mutable_resources()->set_slots_per_rank(65); },
       "spec.resources.slots_per_rank: must be between 0 and 64 (got 65)"},
      {"kind", [](v1::JobSpec& s) { s.mutable_resources()->set_kind("tpu"); },
       "spec.resources.kind: must be cpu or gpu (got 'tpu')"},
      {"empty kind", [](v1::JobSpec& s) { s.mutable_resources()->clear_kind(); },
       "spec.resources.kind: must be cpu or gpu"},
      {"recompute on cpu", [](v1::JobSpec& s) { s.mutable_train()->set_recompute(true); },
       "spec.train.recompute: only valid for gpu jobs (resources.kind: gpu)"},
      {"nondeterministic on cpu",
       [](v1::JobSpec& s) { s.mutable_train()->set_deterministic(false); },
       "spec.train.deterministic: false is only valid for gpu jobs (resources.kind: gpu)"},
      {"gpu head dim",
       [](v1::JobSpec& s) {
         s.mutable_resources()->set_kind("gpu");
         s.mutable_model()->set_dim(256);
         s.mutable_model()->set_n_heads(8);
       },
       "spec.model.dim: dim / n_heads = 256 / 8 = 32; gpu jobs need a head dimension of 64 or 128"},
      {"priority low", [](v1::JobSpec& s) { s.set_priority(-1); },
       "spec.priority: must be between 0 and 1000 (got -1)"},
      {"priority high", [](v1::JobSpec& s) { s.set_priority(1001); },
       "spec.priority: must be between 0 and 1000 (got 1001)"},
      {"max restarts", [](v1::JobSpec& s) { s.set_max_restarts(-1); },
       "spec.max_restarts: must be >= 0 (got -1)"},
      {"absurd restarts", [](v1::JobSpec& s) { s.set_max_restarts(1000); },
       "spec.max_restarts: must be between 0 and 100 (got 1000)"},
      {"stall timeout", [](v1::JobSpec& s) { s.set_stall_timeout_s(-5); },
       "spec.stall_timeout_s: must be between 0 and 604800 (got -5)"},
      {"checkpoint", [](v1::JobSpec& s) { s.mutable_checkpoint()->set_keep_last(-2); },
       "spec.checkpoint.keep_last: must be >= 0 (got -2)"},
      // The trainer's own rules across fields (CheckWithTrainer), with the spec's field paths.
      {"seq_len over the model's", [](v1::JobSpec& s) { s.mutable_train()->set_seq_len(1 << 19); },
       "spec.train.seq_len: must be <= model.max_seq_len"},
      {"kv heads",
       [](v1::JobSpec& s) {
         s.mutable_model()->set_n_heads(4);
         s.mutable_model()->set_n_kv_heads(3);
       },
       "spec.model.n_heads: must be divisible by model.n_kv_heads"},
      {"synthetic and paths", [](v1::JobSpec& s) { s.mutable_data()->set_synthetic(true); },
       "spec.data.train_paths: not valid with data.synthetic"},
      {"oversized",
       [](v1::JobSpec& s) {
         for (int i = 0; i < 3000; ++i) s.mutable_data()->add_val_paths(std::string(400, 'x'));
       },
       "spec: at most 1048576 bytes serialized"},
  };
  for (const Case& c : cases) {
    Status status = ValidateMutated(c.mutate);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(status.message().find(c.message), std::string::npos)
        << c.what << ": got '" << status.message() << "', want '" << c.message << "'";
  }
}

TEST(JobSpecValidatorTest, DataRoots) {
  JobSpecValidatorOptions options;
  options.data_roots = {"/data/", "/mnt/corpus"};
  JobSpecValidator validator(options);
  EXPECT_TRUE(validator.Validate(ValidSpec()).ok());
  Status status = ValidateMutated(
      [](v1::JobSpec& s) { s.mutable_data()->add_train_paths("/database/x.bin"); }, validator);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("spec.data.train_paths[1]: must be under an allowed data root "
                                  "(/data, /mnt/corpus; got '/database/x.bin')"),
            std::string::npos)
      << status.message();
  EXPECT_TRUE(
      ValidateMutated([](v1::JobSpec& s) { s.mutable_data()->add_val_paths("/mnt/corpus/v.bin"); },
                      validator)
          .ok());
}

TEST(JobSpecValidatorTest, ClientRequestId) {
  EXPECT_TRUE(JobSpecValidator::ValidateClientRequestId("").ok());
  EXPECT_TRUE(JobSpecValidator::ValidateClientRequestId("0b6c1c2e-8f7e-4a59-9d2a-4c0f").ok());
  Status status = JobSpecValidator::ValidateClientRequestId(std::string(129, 'a'));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("client_request_id: at most 128"), std::string::npos);
  EXPECT_FALSE(JobSpecValidator::ValidateClientRequestId("a b").ok());
}

}  // namespace
}  // namespace dyt
