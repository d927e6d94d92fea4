// Whether two paths name one file, for tools that must not write an output over one of their
// inputs (dyt-data encode --output over its --input, one output over the other).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace dyt {

// True when `a` and `b` name the same file: the same inode when both exist (hard links,
// symlinks, "x/../y"), else the same absolute, lexically normal path (a file not written yet).
bool SameFile(const std::string& a, const std::string& b);

// A path and the option that named it ("--input").
struct NamedPath {
  std::string option;
  std::string path;
};

// INVALID_ARGUMENT when `output` names the same file as one of `others`:
//   "--output a.txt: is also --input a.txt; writing it would destroy that"
Status RefuseSameFile(const NamedPath& output, const std::vector<NamedPath>& others);

}  // namespace dyt
