// libFuzzer target: the trainer's YAML config parser (LoadYamlString + ParseTrainConfig). Bad
// input must come back as a Status, never as an exception or a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/yaml_config.h"
#include "trainer/train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto root = dyt::LoadYamlString(text);
  if (!root.ok()) return 0;
  (void)dyt::ParseTrainConfig(*root);
  return 0;
}
