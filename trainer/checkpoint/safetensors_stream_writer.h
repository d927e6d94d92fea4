// A safetensors writer that streams tensors from the caller's buffers.
//
// Why not trainer/io SafetensorsWriter: it copies every tensor before writing, which for a
// checkpoint would mean a second copy of params, m and v in memory, and it cannot convert to
// BF16 on the way out. The reference implementation (Hugging Face safetensors,
// Metadata::validate) requires tensor data to be contiguous and cover the whole buffer.
// This writer emits tensors back to back in the order added; only the header is padded (with
// spaces, as the reference does) so the data section starts 8-byte aligned. Files it writes
// read back with ReadSafetensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace dyt {

class SafetensorsStreamWriter {
 public:
  // Records a view; `data` (numel(shape) floats) must stay valid until Write returns.
  void AddF32(const std::string& name, std::vector<int64_t> shape, const float* data);
  // Same, stored as BF16 rounded to nearest even (bf16.h), converted while writing.
  void AddF32AsBf16(const std::string& name, std::vector<int64_t> shape, const float* data);
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // Creates or truncates `path`, writes header and data, fsyncs and closes it.
  Status Write(const std::string& path) const;

 private:
  struct View {
    std::string name;
    std::vector<int64_t> shape;
    const float* data;
    int64_t numel;
    bool bf16;
  };
  std::string Header() const;

  std::vector<View> views_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace dyt
