// Output paths of command-line tools: whether two paths name one file (an output must not be
// written over an input, or over another output), and whether a path can be written at all.
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

// INVALID_ARGUMENT unless `path` can be written as a file: not a directory, and its directory
// exists ("--output out/x.bin: no directory out"). Checked before the work that precedes the
// write, so a typo costs no encoding run.
Status CheckOutputFile(const NamedPath& output);

// " (relative to the working directory /home/ann)" for a relative `path`, else "": for messages
// about a file not found, which a relative path may name from another directory than meant.
std::string RelativeNote(const std::string& path);

}  // namespace dyt
