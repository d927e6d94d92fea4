// manifest.json: the list of a checkpoint's files with their sizes and SHA-256 digests.
//
// The writer creates the manifest last, after every other file is complete and fsynced, so a
// checkpoint directory with a manifest whose files all match it is complete and intact. The
// same entries are what the scheduler stores and what `dytctl pull` verifies downloads with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dyt {

struct ManifestEntry {
  std::string name;    // a plain file name inside the checkpoint directory
  int64_t size = 0;    // bytes
  std::string sha256;  // 64 lowercase hex digits
  bool operator==(const ManifestEntry&) const = default;
};

struct Manifest {
  int format_version = 0;
  int64_t step = 0;
  std::vector<ManifestEntry> files;  // every file of the checkpoint but manifest.json itself
};

// Size and SHA-256 of dir/name.
StatusOr<ManifestEntry> DescribeFile(const std::string& dir, const std::string& name);

std::string ManifestToJson(const Manifest& manifest);

// Parses and checks manifest.json text: DATA_LOSS when malformed (a file name that is not a
// plain name, a bad digest, a duplicate), FAILED_PRECONDITION for an unknown format version.
StatusOr<Manifest> ParseManifest(const std::string& json);

// Reads dir/manifest.json. DATA_LOSS "manifest.json missing (...)" when there is none.
StatusOr<Manifest> ReadManifest(const std::string& dir);

// Checks that every listed file exists with the listed size and SHA-256. Messages name the
// file and the problem ("model.safetensors: sha256 mismatch (file corrupt)"), without the
// directory: callers add which checkpoint it was.
Status VerifyManifestFiles(const std::string& dir, const Manifest& manifest);

}  // namespace dyt
