// Reading and writing the safetensors format (https://huggingface.co/docs/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw little-endian tensor bytes, offsets relative to the end of the header.
//
// No C++ safetensors library is packaged for Debian, and the format is small enough that a
// careful reader (every offset and size checked against the file) is the safest choice.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace dyt {

enum class StDtype { kF32, kF64, kI32, kI64, kU16, kBF16, kF16, kU8 };
const char* StDtypeName(StDtype dtype);
int StDtypeSize(StDtype dtype);

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // raw little-endian bytes
};

// Writes tensors in the given order, back to back (the reference implementation rejects gaps);
// the header is padded with spaces so the data starts 8-byte aligned. Not atomic by itself: callers
// that need atomicity write to a temporary name and rename.
class SafetensorsWriter {
 public:
  void Add(const std::string& name, StDtype dtype, std::vector<int64_t> shape, const void* data);
  void AddF32(const std::string& name, std::vector<int64_t> shape, const float* data) {
    Add(name, StDtype::kF32, std::move(shape), data);
  }
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  // Writes the file; if `fsync_file` is set the data is fsynced before close.
  Status Write(const std::string& path, bool fsync_file = false) const;

 private:
  std::vector<StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct SafetensorsFile {
  std::map<std::string, StTensor> tensors;
  std::map<std::string, std::string> metadata;

  // The tensor `name` as F32 of exactly `numel` elements, or an error naming the problem.
  StatusOr<const float*> F32(const std::string& name, int64_t numel) const;
};

// Reads and validates a whole file (header JSON, dtypes, shapes vs byte sizes, offsets inside
// the file and non-overlapping). Errors are DATA_LOSS naming the file and the problem.
StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

}  // namespace dyt
