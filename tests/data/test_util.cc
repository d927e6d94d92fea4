#include "tests/data/test_util.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace dyt::testing {

ScratchDir::ScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/dyt_data_test_XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  const char* dir = ::mkdtemp(buf.data());
  if (dir == nullptr) {
    ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
    return;
  }
  path_ = dir;
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

namespace {

void AppendLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

void WriteLlmcShard(const std::string& path, int32_t magic, int32_t version,
                    const std::vector<uint32_t>& tokens) {
  std::string bytes;
  AppendLe(bytes, static_cast<uint32_t>(magic), 4);
  AppendLe(bytes, static_cast<uint32_t>(version), 4);
  AppendLe(bytes, tokens.size(), 4);
  bytes.resize(1024, '\0');
  const int width = magic == 20240801 ? 4 : 2;
  for (const uint32_t t : tokens) AppendLe(bytes, t, width);
  WriteFile(path, bytes);
}

void WriteRawShard(const std::string& path, int token_bytes, const std::vector<uint32_t>& tokens) {
  std::string bytes;
  for (const uint32_t t : tokens) AppendLe(bytes, t, token_bytes);
  WriteFile(path, bytes);
}

}  // namespace dyt::testing
