// libFuzzer target: the checkpoint manifest.json parser; what parses must round-trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "trainer/checkpoint/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto manifest = dyt::ParseManifest(text);
  if (!manifest.ok()) return 0;
  auto again = dyt::ParseManifest(dyt::ManifestToJson(*manifest));
  if (!again.ok() || again->step != manifest->step || again->files != manifest->files) {
    __builtin_trap();
  }
  return 0;
}
