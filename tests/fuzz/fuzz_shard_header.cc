// libFuzzer target: the dyt shard header decoder. Inputs are decoded as given and once more
// with a correct checksum (so the fields behind it are reached); what decodes must re-encode
// to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "trainer/data/shard_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)dyt::DecodeDytHeader({data, size}, "fuzz");
  if (size < dyt::kDytHeaderBytes) return 0;
  std::vector<uint8_t> fixed(data, data + dyt::kDytHeaderBytes);
  uint64_t sum = dyt::Fnv1a64({fixed.data(), dyt::kDytChecksumOffset});
  std::memcpy(fixed.data() + dyt::kDytChecksumOffset, &sum, sizeof sum);  // little endian
  auto header = dyt::DecodeDytHeader(fixed, "fuzz");
  if (!header.ok()) return 0;
  std::string encoded = dyt::EncodeDytHeader(*header);
  auto again = dyt::DecodeDytHeader(
      {reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size()}, "fuzz");
  if (!again.ok() || again->token_count != header->token_count ||
      again->vocab_size != header->vocab_size || again->tokenizer_id != header->tokenizer_id) {
    __builtin_trap();
  }
  return 0;
}
