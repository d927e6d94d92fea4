// JobSpec -> dyt-train YAML, checked by parsing the result with the trainer's ParseTrainConfig.
#include "services/worker/job_config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "trainer/train/train_config.h"

namespace dyt::worker {
namespace {

JobPaths Paths() {
  JobPaths p;
  p.job_id = "job-000000000007";
  p.attempt = 2;
  p.checkpoint_dir = "/artifacts/job-000000000007";
  p.output_dir = "/work/jobs/job-000000000007/attempt-1/output";
  p.threads = 2;
  return p;
}

StatusOr<TrainConfig> Convert(const v1::JobSpec& spec, const JobPaths& paths = Paths()) {
  DYT_ASSIGN_OR_RETURN(std::string yaml, TrainYamlFromJobSpec(spec, paths));
  return ParseTrainConfig(YAML::Load(yaml));
}

TEST(JobConfigTest, SyntheticTestPresetKeepsDefaultsAndAddsTheAssignmentsPaths) {
  v1::JobSpec spec;
  spec.mutable_model()->set_preset("test");
  spec.mutable_data()->set_synthetic(true);
  spec.mutable_train()->set_steps(7);
  auto c = Convert(spec);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->data.synthetic);
  EXPECT_EQ(c->train.steps, 7);
  EXPECT_EQ(c->train.batch_size, TrainSection().batch_size);  // default kept
  EXPECT_EQ(c->train.threads, 2);
  EXPECT_EQ(c->checkpoint.dir, "/artifacts/job-000000000007");
  EXPECT_EQ(c->output_dir, "/work/jobs/job-000000000007/attempt-1/output");
  EXPECT_EQ(c->job_id, "job-000000000007");
  EXPECT_EQ(c->job_attempt, 2);  // recorded in each checkpoint's state.json
  auto preset = ModelPreset("test");
  ASSERT_TRUE(preset.ok());
  EXPECT_EQ(c->model.dim, preset->dim);
}

TEST(JobConfigTest, GpuSlotsTrainOnTheGpuAndCpuSlotsOnTheCpu) {
  v1::JobSpec spec;
  spec.mutable_model()->set_preset("test");
  spec.mutable_data()->set_synthetic(true);
  spec.mutable_resources()->set_kind("gpu");
  auto gpu = Convert(spec);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  EXPECT_EQ(gpu->train.device, TrainDevice::kCuda);
  EXPECT_FALSE(gpu->train.recompute);
  EXPECT_TRUE(gpu->train.deterministic);
  spec.mutable_train()->set_recompute(true);
  spec.mutable_train()->set_deterministic(false);
  auto recompute = Convert(spec);
  ASSERT_TRUE(recompute.ok()) << recompute.status().ToString();
  EXPECT_TRUE(recompute->train.recompute);
  EXPECT_FALSE(recompute->train.deterministic);
  spec.mutable_train()->set_recompute(false);
  spec.mutable_train()->clear_deterministic();
  spec.mutable_resources()->set_kind("cpu");
  auto cpu = Convert(spec);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_EQ(cpu->train.device, TrainDevice::kCpu);
}

TEST(JobConfigTest, EveryFieldSetReachesTheTrainer) {
  v1::JobSpec spec;
  v1::ModelSpec* m = spec.mutable_model();
  m->set_preset("test");
  m->set_norm("rmsnorm");
  m->set_dim(64);
  m->set_n_layers(3);
  m->set_n_heads(4);
  m->set_n_kv_heads(2);
  m->set_ffn_dim(96);
  m->set_max_seq_len(48);
  m->set_vocab_size(300);
  m->set_rope_theta(5000);
  m->set_tie_embeddings(true);
  v1::DataSpec* d = spec.mutable_data();
  d->add_train_paths("/data/train-*.bin");
  d->add_val_paths("/data/val.bin");
  d->set_format("raw_u16");
  d->set_seed(9);
  v1::OptimizerSpec* o = spec.mutable_optimizer();
  o->set_lr(0.01f);
  o->set_min_lr(0.001f);
  o->set_warmup_steps(4);
  o->set_beta2(0.98f);
  o->set_weight_decay(0.05f);
  o->set_grad_clip(0.5f);
  o->set_no_decay_norms(true);
  v1::TrainSpec* t = spec.mutable_train();
  t->set_steps(50);
  t->set_batch_size(3);
  t->set_grad_accum(2);
  t->set_seq_len(32);
  t->set_seed(11);
  t->set_log_every(5);
  t->set_eval_every(10);
  t->set_eval_batches(2);
  v1::CheckpointPolicy* k = spec.mutable_checkpoint();
  k->set_every_steps(20);
  k->set_every_minutes(15);
  k->set_keep_last(4);
  k->set_keep_every_steps(100);
  m->set_multiple_of(32);
  m->set_norm_eps(1e-6f);
  d->set_max_val_windows(64);
  o->set_decay_steps(40);
  t->set_zero1(true);
  spec.set_init_from_weights_only(true);
  JobPaths paths = Paths();
  paths.data_roots = {"/data", "/more-data"};
  paths.init_checkpoint = "/artifacts/job-000000000003/step-00000500";
  auto c = Convert(spec, paths);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->model.norm, NormKind::kRmsNorm);
  EXPECT_EQ(c->model.dim, 64);
  EXPECT_EQ(c->model.n_layers, 3);
  EXPECT_EQ(c->model.n_kv_heads, 2);
  EXPECT_EQ(c->model.ffn_dim, 96);
  EXPECT_EQ(c->model.max_seq_len, 48);
  EXPECT_EQ(c->model.vocab_size, 300);
  EXPECT_TRUE(c->model.tie_embeddings);
  ASSERT_EQ(c->data.shards.train_paths.size(), 1u);
  EXPECT_EQ(c->data.shards.train_paths[0], "/data/train-*.bin");
  EXPECT_EQ(c->data.shards.format, "raw_u16");
  EXPECT_EQ(c->data.shards.seed, 9u);
  EXPECT_EQ(c->data.shards.roots, (std::vector<std::string>{"/data", "/more-data"}));
  EXPECT_FLOAT_EQ(c->optim.schedule.lr, 0.01f);
  EXPECT_FLOAT_EQ(c->optim.schedule.min_lr, 0.001f);
  EXPECT_EQ(c->optim.schedule.warmup_steps, 4);
  EXPECT_FLOAT_EQ(c->optim.adamw.beta2, 0.98f);
  EXPECT_FLOAT_EQ(c->optim.grad_clip, 0.5f);
  EXPECT_TRUE(c->optim.adamw.no_decay_norms_and_scales);
  EXPECT_EQ(c->train.steps, 50);
  EXPECT_EQ(c->train.batch_size, 3);
  EXPECT_EQ(c->train.grad_accum, 2);
  EXPECT_EQ(c->train.seq_len, 32);
  EXPECT_EQ(c->train.seed, 11u);
  EXPECT_EQ(c->train.eval_every, 10);
  EXPECT_EQ(c->checkpoint.every_steps, 20);
  EXPECT_DOUBLE_EQ(c->checkpoint.every_minutes, 15);
  EXPECT_EQ(c->checkpoint.keep_last, 4);
  EXPECT_EQ(c->checkpoint.keep_every_steps, 100);
  EXPECT_EQ(c->model.multiple_of, 32);
  EXPECT_FLOAT_EQ(c->model.norm_eps, 1e-6f);
  EXPECT_EQ(c->data.shards.max_val_windows, 64);
  EXPECT_EQ(c->optim.schedule.total_steps, 40);
  EXPECT_TRUE(c->train.zero1);
  EXPECT_EQ(c->checkpoint.init_from, "/artifacts/job-000000000003/step-00000500");
  EXPECT_TRUE(c->checkpoint.init_weights_only);
}

// Every field of the spec's model, data, optimizer and train sections is written to the trainer's
// config under its own name: a field added to the proto but not here would be accepted at
// submission and silently ignored (train.zero1 was, and is now written).
TEST(JobConfigTest, NoSpecFieldIsDropped) {
  using google::protobuf::FieldDescriptor;
  const std::pair<const char*, const google::protobuf::Descriptor*> sections[] = {
      {"model", v1::ModelSpec::descriptor()},
      {"data", v1::DataSpec::descriptor()},
      {"optimizer", v1::OptimizerSpec::descriptor()},
      {"train", v1::TrainSpec::descriptor()},
  };
  for (const auto& [section, descriptor] : sections) {
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor* f = descriptor->field(i);
      v1::JobSpec spec;
      google::protobuf::Message* msg = spec.GetReflection()->MutableMessage(
          &spec, v1::JobSpec::descriptor()->FindFieldByName(section));
      const google::protobuf::Reflection* r = msg->GetReflection();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          r->SetInt32(msg, f, 3);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          r->SetInt64(msg, f, 3);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          r->SetUInt64(msg, f, 3);
          break;
        case FieldDescriptor::CPPTYPE_FLOAT:
          r->SetFloat(msg, f, 0.5f);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          r->SetDouble(msg, f, 0.5);
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          r->SetBool(msg, f, true);
          break;
        case FieldDescriptor::CPPTYPE_STRING:
          if (f->is_repeated()) {
            r->AddString(msg, f, "x");
          } else {
            r->SetString(msg, f, "x");
          }
          break;
        default:
          FAIL() << f->full_name() << ": a type this test does not know";
          break;
      }
      auto yaml = TrainYamlFromJobSpec(spec, Paths());
      ASSERT_TRUE(yaml.ok()) << f->full_name() << ": " << yaml.status().ToString();
      const YAML::Node root = YAML::Load(*yaml);
      EXPECT_TRUE(root[section][f->name()].IsDefined())
          << f->full_name() << " is not written to the trainer's config:\n"
          << *yaml;
    }
  }
}

TEST(JobConfigTest, DytOptionalFieldsSetToFalseAreKept) {
  v1::JobSpec spec;
  spec.mutable_model()->set_preset("test");
  spec.mutable_model()->set_dyt_bias(false);
  spec.mutable_model()->set_embed_scale(false);
  spec.mutable_model()->set_alpha0_attn(0.8f);
  spec.mutable_model()->set_init_std(0.05f);
  spec.mutable_data()->set_synthetic(true);
  auto c = Convert(spec);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->model.dyt_bias);
  EXPECT_FALSE(c->model.has_embed_scale());
  EXPECT_FLOAT_EQ(c->model.alpha0_attn, 0.8f);
  EXPECT_FLOAT_EQ(c->model.init_std, 0.05f);
}

TEST(JobConfigTest, TheTrainersRulesNameTheField) {
  v1::JobSpec spec;
  spec.mutable_model()->set_preset("test");
  spec.mutable_data()->set_synthetic(true);
  spec.mutable_train()->set_batch_size(-2);
  auto yaml = TrainYamlFromJobSpec(spec, Paths());
  ASSERT_TRUE(yaml.ok());
  const Status st = ValidateTrainYaml(*yaml);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("train.batch_size"), std::string::npos) << st.message();

  v1::JobSpec no_data;
  no_data.mutable_model()->set_preset("test");
  auto y2 = TrainYamlFromJobSpec(no_data, Paths());
  ASSERT_TRUE(y2.ok());
  const Status st2 = ValidateTrainYaml(*y2);
  EXPECT_NE(st2.message().find("data.train_paths"), std::string::npos) << st2.message();

  v1::JobSpec bad_preset;
  bad_preset.mutable_model()->set_preset("no-such-preset");
  bad_preset.mutable_data()->set_synthetic(true);
  auto y3 = TrainYamlFromJobSpec(bad_preset, Paths());
  ASSERT_TRUE(y3.ok());
  EXPECT_NE(ValidateTrainYaml(*y3).message().find("model.preset"), std::string::npos);
}

TEST(JobConfigTest, MissingCheckpointDirIsRefused) {
  v1::JobSpec spec;
  JobPaths p = Paths();
  p.checkpoint_dir.clear();
  auto yaml = TrainYamlFromJobSpec(spec, p);
  EXPECT_EQ(yaml.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(yaml.status().message().find("checkpoint_dir"), std::string::npos);
}

}  // namespace
}  // namespace dyt::worker
