#include "tests/checkpoint/test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "trainer/model/rng.h"

namespace dyt::testing {

namespace fs = std::filesystem;

ModelConfig TinyConfig() {
  ModelConfig c;
  c.vocab_size = 64;
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 40;
  c.max_seq_len = 32;
  c.Finalize();
  if (!c.Validate().ok()) throw std::runtime_error("TinyConfig invalid");
  return c;
}

CheckpointState MakeState(const ModelConfig& config, int64_t step) {
  const ParamLayout layout(config);
  CheckpointState s;
  s.model_config_json = ModelConfigToJson(config);
  s.train_config_yaml = "model:\n  preset: tiny\ntrain:\n  steps: 100  # comment kept\n";
  s.params.assign(size_t(layout.total()), 0.0f);
  s.adam_m = s.params;
  s.adam_v = s.params;
  Rng rng(1000 + uint64_t(step));
  for (const ParamTensor& t : layout.tensors()) {
    for (int64_t i = 0; i < t.numel; ++i) {
      s.params[size_t(t.offset + i)] = float(rng.NextNormal() * 0.5);
      s.adam_m[size_t(t.offset + i)] = float(rng.NextNormal() * 1e-3);
      s.adam_v[size_t(t.offset + i)] = float(rng.NextDouble() * 1e-6);
    }
  }
  // Values that expose sloppy conversions: negative zero, a subnormal, and bf16 ties (the
  // low 16 bits exactly 0x8000: one rounds down to even, one up to even).
  const int64_t w = layout.tensors()[0].offset;
  const uint32_t ties[] = {0x3f808000u, 0x3f818000u, 0xbf808000u};
  s.params[size_t(w + 0)] = -0.0f;
  s.params[size_t(w + 1)] = 1e-40f;
  for (int i = 0; i < 3; ++i) std::memcpy(&s.params[size_t(w + 2 + i)], &ties[i], 4);
  s.adam_step = step + 7;
  s.step = step;
  s.tokens_seen = step * 4096 + 3;
  s.loader = {uint64_t(step / 10), uint64_t(step % 10) * 5, 0xfedcba9876543210ull};
  s.rng_state = 0x8000000000000001ull + uint64_t(step);
  s.meta.job_id = "job-ckpt-test";
  s.meta.attempt = 4;
  s.meta.train_loss = 3.0 + 1.0 / 3.0 + double(step);
  s.meta.val_loss = step % 2 ? NAN : 2.5;
  s.meta.unix_time = 1.7e9 + 0.123456789;
  s.meta.code_version = "abc123-dirty";
  s.meta.world_size = 2;
  s.meta.tokenizer_id = step % 2 ? "" : std::string(32, 'a') + std::string(32, '9');
  return s;
}

void FlipByte(const std::string& path, int64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = char(~c);
  f.seekp(offset);
  f.write(&c, 1);
  if (!f) throw std::runtime_error("FlipByte failed on " + path);
}

void Truncate(const std::string& path, int64_t size) { fs::resize_file(path, uintmax_t(size)); }

int64_t FileSize(const std::string& path) { return int64_t(fs::file_size(path)); }

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void CopyDir(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
}

long DeadPid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return long(pid);
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

}  // namespace dyt::testing
