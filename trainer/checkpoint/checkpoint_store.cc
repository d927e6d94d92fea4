#include "trainer/checkpoint/checkpoint_store.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/durable_file.h"

namespace dyt {
namespace {

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Damage (try an older checkpoint) versus an intact checkpoint we must not use (stop).
bool IsDamage(const Status& s) { return s.code() != StatusCode::kFailedPrecondition; }

}  // namespace

StatusOr<std::vector<CheckpointDir>> ListCheckpoints(const std::string& store) {
  std::vector<CheckpointDir> dirs;
  std::error_code ec;
  if (!std::filesystem::exists(store, ec)) return dirs;
  std::filesystem::directory_iterator it(store, ec);
  if (ec) return IoError("cannot list", store, ec.value());
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto step = ParseStepDirName(name);
    std::error_code type_ec;  // an entry we cannot stat is simply not a checkpoint
    if (!step || !it->is_directory(type_ec)) continue;
    dirs.push_back({*step, name, JoinPath(store, name)});
  }
  if (ec) return IoError("cannot list", store, ec.value());
  std::sort(dirs.begin(), dirs.end(),
            [](const CheckpointDir& a, const CheckpointDir& b) { return a.step > b.step; });
  return dirs;
}

StatusOr<std::string> ReadLatest(const std::string& store) {
  DYT_ASSIGN_OR_RETURN(const std::string text,
                       ReadFileToString(JoinPath(store, kLatestFile), /*max_bytes=*/4096));
  const std::string name = Trim(text);
  if (!ParseStepDirName(name)) {
    return DataLoss(JoinPath(store, kLatestFile) + " does not hold a step directory name");
  }
  return name;
}

StatusOr<ResumePoint> FindLatestGood(const std::string& store, const ModelConfig* expect) {
  DYT_ASSIGN_OR_RETURN(const std::vector<CheckpointDir> dirs, ListCheckpoints(store));
  if (dirs.empty()) return NotFound("no checkpoint in " + store);

  ResumePoint point;
  // Candidates: dirs[first..], highest step first.
  size_t first = 0;
  auto latest = ReadLatest(store);
  if (!latest.ok()) {
    point.warnings.push_back((latest.status().code() == StatusCode::kNotFound
                                  ? JoinPath(store, kLatestFile) + " is missing"
                                  : latest.status().message()) +
                             "; trying every step directory, highest first");
  } else {
    auto it = std::find_if(dirs.begin(), dirs.end(),
                           [&](const CheckpointDir& d) { return d.name == *latest; });
    if (it == dirs.end()) {
      point.warnings.push_back(JoinPath(store, kLatestFile) + " names " + *latest +
                               ", which does not exist; trying every step directory, "
                               "highest first");
    } else {
      first = size_t(it - dirs.begin());
      for (size_t i = 0; i < first; ++i) {
        point.warnings.push_back("ignored " + dirs[i].path + ": newer than latest (" + *latest +
                                 "), never committed as latest");
      }
    }
  }

  std::vector<std::string> problems;
  for (size_t i = first; i < dirs.size(); ++i) {
    auto state = LoadCheckpoint(dirs[i].path, expect);
    if (state.ok()) {
      point.state = std::move(state).value();
      point.dir = dirs[i].path;
      return point;
    }
    if (!IsDamage(state.status())) return state.status();
    problems.push_back(state.status().message());
    point.warnings.push_back("skipped " + state.status().message());
  }
  std::string all;
  for (const std::string& p : problems) all += "\n  " + p;
  return DataLoss("no intact checkpoint in " + store + ":" + all);
}

}  // namespace dyt
