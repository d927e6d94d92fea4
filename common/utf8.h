// Valid UTF-8 from arbitrary bytes, for protobuf `string` fields and tokenizer input.
//
// proto3 `string` fields must hold valid UTF-8: a message with a field that does not is
// refused when it is serialized (gRPC then breaks the stream). Text that comes from outside
// (a trainer's output, its error messages, file names) goes through ToValidUtf8 first.
#pragma once

#include <string>
#include <string_view>

namespace dyt {

// `text` with each byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF) replaced by U+FFFD. Valid text comes back
// unchanged.
std::string ToValidUtf8(std::string_view text);

// Whether `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

// The bytes of `text` that ToValidUtf8 would replace; the offset of the first in `*first`
// (left alone when there is none).
size_t CountInvalidUtf8(std::string_view text, size_t* first = nullptr);

}  // namespace dyt
