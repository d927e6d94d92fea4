#include "trainer/checkpoint/checkpoint_writer.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include "trainer/checkpoint/checkpoint_names.h"
#include "trainer/checkpoint/durable_file.h"
#include "trainer/checkpoint/safetensors_stream_writer.h"
#include "trainer/checkpoint/state_json.h"
#include "trainer/model/config.h"

namespace dyt {
namespace {

// The state must describe exactly the model the layout was built for; otherwise the files
// would not load (LoadCheckpoint rebuilds the layout from the stored config).
Status CheckStateMatchesLayout(const CheckpointState& state, const ParamLayout& layout) {
  if (state.step < 0 || state.tokens_seen < 0 || state.adam_step < 0) {
    return InvalidArgument("step, tokens_seen and adam_step must be non-negative");
  }
  if (state.meta.world_size < 1) return InvalidArgument("meta.world_size must be >= 1");
  auto config = ModelConfigFromJson(state.model_config_json);
  if (!config.ok()) return config.status().WithContext("model_config_json");
  const ParamLayout stored(*config);
  bool same =
      stored.total() == layout.total() && stored.tensors().size() == layout.tensors().size();
  for (size_t i = 0; same && i < stored.tensors().size(); ++i) {
    const ParamTensor& a = stored.tensors()[i];
    const ParamTensor& b = layout.tensors()[i];
    same = a.name == b.name && a.shape == b.shape && a.offset == b.offset;
  }
  if (!same) return InvalidArgument("the ParamLayout is not the layout of model_config_json");
  const size_t n = size_t(layout.total());
  if (state.params.size() != n || state.adam_m.size() != n || state.adam_v.size() != n) {
    return InvalidArgument(
        "params, adam_m and adam_v must each hold " + std::to_string(n) +
        " floats (ParamLayout::total()); they hold " + std::to_string(state.params.size()) + ", " +
        std::to_string(state.adam_m.size()) + ", " + std::to_string(state.adam_v.size()));
  }
  return Status::Ok();
}

// Writes the three data files into `dir` (each fsynced) and describes them for the manifest.
// Tensors stream straight from the state's buffers: no second copy of the model in memory.
Status WriteDataFiles(const std::string& dir, const CheckpointState& state,
                      const ParamLayout& layout, std::vector<ManifestEntry>* files) {
  SafetensorsStreamWriter model;
  for (const ParamTensor& t : layout.tensors()) {
    model.AddF32(t.name, t.shape, state.params.data() + t.offset);
  }
  DYT_RETURN_IF_ERROR(model.Write(JoinPath(dir, kModelFile)));
  SafetensorsStreamWriter optimizer;
  for (const ParamTensor& t : layout.tensors()) {
    optimizer.AddF32(ExpAvgName(t.name), t.shape, state.adam_m.data() + t.offset);
  }
  for (const ParamTensor& t : layout.tensors()) {
    optimizer.AddF32(ExpAvgSqName(t.name), t.shape, state.adam_v.data() + t.offset);
  }
  DYT_RETURN_IF_ERROR(optimizer.Write(JoinPath(dir, kOptimizerFile)));
  DYT_RETURN_IF_ERROR(WriteFileSynced(JoinPath(dir, kStateFile), StateToJson(state)));
  // Digests are computed from the files as they are on disk, so the manifest vouches for
  // what a reader will actually find.
  for (const char* name : {kModelFile, kOptimizerFile, kStateFile}) {
    DYT_ASSIGN_OR_RETURN(ManifestEntry e, DescribeFile(dir, name));
    files->push_back(std::move(e));
  }
  return Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Moves the finished temp directory to its final name (step 3 of the protocol).
Status Publish(const std::string& store, const std::string& tmp, const std::string& name) {
  const std::string final_dir = JoinPath(store, name);
  if (!Exists(final_dir)) {
    if (::rename(tmp.c_str(), final_dir.c_str()) != 0) return IoError("rename", tmp, errno);
    return FsyncDir(store);
  }
  // A re-save of the same step (e.g. a run resumed from an earlier checkpoint reached it
  // again). Swapping keeps a complete checkpoint under the name at every instant; afterwards
  // `tmp` holds the old copy.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    DYT_RETURN_IF_ERROR(FsyncDir(store));
    // The new checkpoint is committed; failing to delete the old copy must not undo that.
    (void)RemoveTree(tmp);
    return Status::Ok();
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
    return IoError("rename (exchange)", tmp, errno);
  }
  // No atomic exchange here (e.g. NFS): move the old copy aside, then the new one in. A crash
  // between the two leaves no directory under this name; readers then fall back to the
  // previous step, and retention removes the .old- copy.
  const std::string old = JoinPath(store, OldName(name));
  DYT_RETURN_IF_ERROR(RemoveTree(old));
  if (::rename(final_dir.c_str(), old.c_str()) != 0) return IoError("rename", final_dir, errno);
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    const int err = errno;
    ::rename(old.c_str(), final_dir.c_str());  // put the old copy back
    return IoError("rename", tmp, err);
  }
  DYT_RETURN_IF_ERROR(FsyncDir(store));
  (void)RemoveTree(old);
  return Status::Ok();
}

}  // namespace

Status SaveCheckpoint(const std::string& store, const CheckpointState& state,
                      const ParamLayout& layout, SaveResult* result) {
  const auto start = std::chrono::steady_clock::now();
  const std::string name = StepDirName(state.step);
  const std::string context = "saving checkpoint " + name + " in " + store;
  DYT_RETURN_IF_ERROR(CheckStateMatchesLayout(state, layout).WithContext(context));
  DYT_RETURN_IF_ERROR(EnsureDir(store).WithContext(context));

  const std::string tmp = JoinPath(store, TempName(name));
  // A leftover of an earlier failed save of this step by this process.
  DYT_RETURN_IF_ERROR(RemoveTree(tmp).WithContext(context));
  if (::mkdir(tmp.c_str(), 0755) != 0) {
    return IoError("cannot create directory", tmp, errno).WithContext(context);
  }
  Manifest manifest;
  manifest.format_version = kCheckpointFormatVersion;
  manifest.step = state.step;
  Status s = WriteDataFiles(tmp, state, layout, &manifest.files);
  const std::string manifest_json = ManifestToJson(manifest);
  if (s.ok()) s = WriteFileSynced(JoinPath(tmp, kManifestFile), manifest_json);
  if (s.ok()) s = FsyncDir(tmp);
  if (s.ok()) s = Publish(store, tmp, name);
  if (!s.ok()) {
    (void)RemoveTree(tmp);  // best effort; a leftover is removed by retention later
    return s.WithContext(context);
  }
  DYT_RETURN_IF_ERROR(
      ReplaceFileAtomically(JoinPath(store, kLatestFile), name + "\n").WithContext(context));

  if (result) {
    result->dir = JoinPath(store, name);
    result->name = name;
    result->files = manifest.files;
    result->bytes = int64_t(manifest_json.size());
    for (const ManifestEntry& e : manifest.files) result->bytes += e.size;
    result->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return Status::Ok();
}

}  // namespace dyt
