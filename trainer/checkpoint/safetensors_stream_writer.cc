#include "trainer/checkpoint/safetensors_stream_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "trainer/checkpoint/bf16.h"

namespace dyt {
namespace {

// safetensors data is little-endian; we write memory as it is.
static_assert(std::endian::native == std::endian::little, "safetensors writer assumes LE");

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

class FdWriter {
 public:
  FdWriter(int fd, const std::string& path) : fd_(fd), path_(path) {}
  Status Write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return IoError("write", path_, errno);
      }
      p += w;
      n -= size_t(w);
    }
    return Status::Ok();
  }

 private:
  int fd_;
  const std::string& path_;
};

}  // namespace

void SafetensorsStreamWriter::AddF32(const std::string& name, std::vector<int64_t> shape,
                                     const float* data) {
  const int64_t n = Numel(shape);
  views_.push_back({name, std::move(shape), data, n, false});
}

void SafetensorsStreamWriter::AddF32AsBf16(const std::string& name, std::vector<int64_t> shape,
                                           const float* data) {
  const int64_t n = Numel(shape);
  views_.push_back({name, std::move(shape), data, n, true});
}

std::string SafetensorsStreamWriter::Header() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  int64_t offset = 0;
  for (const View& v : views_) {
    const int64_t bytes = v.numel * (v.bf16 ? 2 : 4);
    header[v.name] = {{"dtype", v.bf16 ? "BF16" : "F32"},
                      {"shape", v.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // 8 + size is then a multiple of 8
  return json;
}

Status SafetensorsStreamWriter::Write(const std::string& path) const {
  const std::string header = Header();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create", path, errno);
  FdWriter out(fd, path);
  Status s = out.Write(len, 8);
  if (s.ok()) s = out.Write(header.data(), header.size());
  std::vector<uint16_t> chunk;
  for (size_t i = 0; s.ok() && i < views_.size(); ++i) {
    const View& v = views_[i];
    if (!v.bf16) {
      s = out.Write(v.data, size_t(v.numel) * sizeof(float));
      continue;
    }
    // Convert a bounded chunk at a time: no full-size copy of a large tensor.
    constexpr int64_t kChunk = 1 << 16;
    for (int64_t b = 0; s.ok() && b < v.numel; b += kChunk) {
      const int64_t n = std::min(kChunk, v.numel - b);
      chunk.resize(size_t(n));
      for (int64_t j = 0; j < n; ++j) chunk[size_t(j)] = Bf16FromFloat(v.data[b + j]);
      s = out.Write(chunk.data(), size_t(n) * sizeof(uint16_t));
    }
  }
  if (s.ok() && ::fsync(fd) != 0) s = IoError("fsync", path, errno);
  if (::close(fd) != 0 && s.ok()) s = IoError("close", path, errno);
  return s;
}

}  // namespace dyt
