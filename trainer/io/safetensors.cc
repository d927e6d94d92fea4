#include "trainer/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace dyt {
namespace {

struct DtypeInfo {
  StDtype dtype;
  const char* name;
  int size;
};
constexpr DtypeInfo kDtypes[] = {
    {StDtype::kF32, "F32", 4}, {StDtype::kF64, "F64", 8}, {StDtype::kI32, "I32", 4},
    {StDtype::kI64, "I64", 8}, {StDtype::kU16, "U16", 2}, {StDtype::kBF16, "BF16", 2},
    {StDtype::kF16, "F16", 2}, {StDtype::kU8, "U8", 1},
};

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Status WriteAll(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError("write", path, errno);
    }
    p += w;
    n -= size_t(w);
  }
  return Status::Ok();
}

}  // namespace

const char* StDtypeName(StDtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

int StDtypeSize(StDtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

void SafetensorsWriter::Add(const std::string& name, StDtype dtype, std::vector<int64_t> shape,
                            const void* data) {
  StTensor t;
  t.name = name;
  t.dtype = dtype;
  const size_t bytes = size_t(Numel(shape)) * StDtypeSize(dtype);
  t.shape = std::move(shape);
  t.data.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
  tensors_.push_back(std::move(t));
}

Status SafetensorsWriter::Write(const std::string& path, bool fsync_file) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  // Tensors sit back to back: the reference implementation rejects gaps between them. The
  // header is padded with spaces so the data section starts 8-byte aligned.
  uint64_t offset = 0;
  for (const StTensor& t : tensors_) {
    header[t.name] = {{"dtype", StDtypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string json = header.dump();
  json.append((8 - (8 + json.size()) % 8) % 8, ' ');
  const uint64_t n = json.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create", path, errno);
  Status s = WriteAll(fd, len, 8, path);
  if (s.ok()) s = WriteAll(fd, json.data(), json.size(), path);
  for (size_t i = 0; s.ok() && i < tensors_.size(); ++i) {
    s = WriteAll(fd, tensors_[i].data.data(), tensors_[i].data.size(), path);
  }
  if (s.ok() && fsync_file && ::fsync(fd) != 0) s = IoError("fsync", path, errno);
  if (::close(fd) != 0 && s.ok()) s = IoError("close", path, errno);
  return s;
}

StatusOr<const float*> SafetensorsFile::F32(const std::string& name, int64_t numel) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) return NotFound("tensor '" + name + "' not in file");
  if (it->second.dtype != StDtype::kF32) {
    return InvalidArgument("tensor '" + name + "' has dtype " + StDtypeName(it->second.dtype) +
                           ", want F32");
  }
  if (Numel(it->second.shape) != numel) {
    return InvalidArgument("tensor '" + name + "' has " + std::to_string(Numel(it->second.shape)) +
                           " elements, want " + std::to_string(numel));
  }
  return reinterpret_cast<const float*>(it->second.data.data());
}

StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path);
  in.seekg(0, std::ios::end);
  const uint64_t file_size = uint64_t(in.tellg());
  in.seekg(0);
  auto bad = [&](const std::string& why) { return DataLoss(path + ": " + why); };
  if (file_size < 8) return bad("file shorter than the 8-byte header length");
  uint8_t len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(len[i]) << (8 * i);
  if (n > file_size - 8 || n > (uint64_t(100) << 20)) return bad("header length out of range");
  std::string json(n, '\0');
  in.read(json.data(), std::streamsize(n));
  const nlohmann::json header = nlohmann::json::parse(json, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return bad("header is not a JSON object");
  const uint64_t data_size = file_size - 8 - n;

  SafetensorsFile file;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) return bad("__metadata__." + k + " is not a string");
        file.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets")) {
      return bad("tensor '" + name + "' lacks dtype, shape or data_offsets");
    }
    StTensor t;
    t.name = name;
    bool known = false;
    for (const auto& d : kDtypes) {
      if (entry["dtype"] == d.name) {
        t.dtype = d.dtype;
        known = true;
      }
    }
    if (!known) return bad("tensor '" + name + "' has unknown dtype");
    const auto& shape = entry["shape"];
    const auto& offs = entry["data_offsets"];
    if (!shape.is_array() || !offs.is_array() || offs.size() != 2) {
      return bad("tensor '" + name + "' has a malformed shape or data_offsets");
    }
    for (const auto& s : shape) {
      if (!s.is_number_unsigned()) return bad("tensor '" + name + "' has a negative dimension");
      t.shape.push_back(s.get<int64_t>());
    }
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
      return bad("tensor '" + name + "' has malformed data_offsets");
    }
    const uint64_t b = offs[0], e = offs[1];
    if (b > e || e > data_size) return bad("tensor '" + name + "' data lies outside the file");
    if (e - b != uint64_t(Numel(t.shape)) * StDtypeSize(t.dtype)) {
      return bad("tensor '" + name + "' byte size does not match its shape and dtype");
    }
    ranges.push_back({b, e});
    t.data.resize(e - b);
    in.seekg(std::streamoff(8 + n + b));
    in.read(reinterpret_cast<char*>(t.data.data()), std::streamsize(e - b));
    if (!in) return bad("short read of tensor '" + name + "'");
    file.tensors[name] = std::move(t);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return bad("tensor data ranges overlap");
  }
  return file;
}

}  // namespace dyt
