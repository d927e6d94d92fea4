// Text formatting for dytctl's table output: aligned tables, ages, durations, sizes, numbers,
// and the one-line progress bar of `watch` and `pull`.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"

namespace dyt::cli {

// Left-aligned columns separated by two spaces, a header row first.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);
  void Print(std::ostream& out) const;
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "45s", "12m", "3h", "2d" (the largest unit, truncated); "-" for an unset timestamp.
std::string Age(const google::protobuf::Timestamp& then, int64_t now_unix_s);
// "1m05s", "2h03m", "45s"; "?" for a negative or non-finite value.
std::string Duration(double seconds);
// "2026-11-28 14:03:07" in local time; "-" when unset.
std::string LocalTime(const google::protobuf::Timestamp& t);
// "512 B", "3.4 KiB", "1.2 GiB".
std::string Bytes(int64_t n);
// "12.3k", "1.23M", "950" (three significant digits).
std::string Compact(double v);
// A fixed-point number: "4.1234" (`digits` after the point); "-" when zero and `dash_zero`.
std::string Fixed(double v, int digits, bool dash_zero = true);
// "[##########----------]" `width` characters inside the brackets for done/total.
std::string Bar(double done, double total, int width);

// `text` made harmless for a terminal: control characters (C0 but tab, DEL, C1 encoded or as
// stray bytes) become visible escapes ("\x1b", "\x7f", "\u009b", "\x9b"), so a trainer's
// output cannot move the cursor, retitle the window or hide what came before on the line.
// Everything else, other UTF-8 included, is kept; newlines too with `keep_newlines`.
std::string TerminalSafe(const std::string& text, bool keep_newlines = false);

// The message as JSON with proto field names (snake_case, as in the job spec YAML) and every
// field printed, so scripts see zeros and empty lists too.
std::string ToJson(const google::protobuf::Message& message, bool pretty = true);

}  // namespace dyt::cli
