#include "services/cli/checkpoint_download.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "common/sha256.h"

namespace dyt::cli {
namespace fs = std::filesystem;
namespace {
constexpr char kManifest[] = "manifest.json";
}  // namespace

Status CheckServerFileName(const std::string& name) {
  const char* why = nullptr;
  if (name.empty()) {
    why = "empty";
  } else if (name == "." || name == "..") {
    why = "not a file name";
  } else if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos) {
    why = "contains a path separator";
  } else if (name.find('\0') != std::string::npos) {
    why = "contains NUL";
  } else if (name.size() > 255) {
    why = "longer than 255 characters";
  }
  if (why == nullptr) return Status::Ok();
  std::string shown = name.substr(0, 80);
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return DataLoss("refusing file name '" + shown + "' from the server: " + why);
}

CheckpointDownload::CheckpointDownload(std::string dir, v1::CheckpointRecord checkpoint)
    : dir_(std::move(dir)), checkpoint_(std::move(checkpoint)) {}

CheckpointDownload::~CheckpointDownload() = default;

StatusOr<DownloadPlan> CheckpointDownload::Plan() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return IoError("cannot create the directory", dir_, ec.value());
  for (const auto& f : checkpoint_.files()) {
    DYT_RETURN_IF_ERROR(CheckServerFileName(f.name()));
    if (f.size() < 0) return DataLoss("file " + f.name() + ": negative size in the manifest");
    if (!files_.emplace(f.name(), FileState{f.size(), f.sha256(), false}).second) {
      return DataLoss("file " + f.name() + ": listed twice in the checkpoint's manifest");
    }
    bytes_total_ += f.size();
  }
  // A symlink where a file goes would make the pull write (or resume appending) through it into
  // whatever it points at: refused, whoever planted it.
  std::vector<std::string> names = {kManifest};
  for (const auto& f : checkpoint_.files()) names.push_back(f.name());
  for (const std::string& name : names) {
    for (const std::string& path : {PathOf(name), PathOf(name) + ".part"}) {
      if (fs::is_symlink(fs::symlink_status(path, ec))) {
        return FailedPrecondition(path +
                                  " is a symbolic link; dytctl pull writes only files of its "
                                  "own there (remove it, or pull into another directory)");
      }
    }
  }
  DownloadPlan plan;
  plan.bytes_total = bytes_total_;
  bool started = false;
  for (const auto& f : checkpoint_.files()) {
    if (started) {
      fs::remove(PathOf(f.name()) + ".part", ec);
      continue;
    }
    FileState& state = files_[f.name()];
    const std::string final_path = PathOf(f.name());
    const std::string part = final_path + ".part";
    // Complete from an earlier run (or a .part that was complete but not yet renamed).
    for (const std::string& candidate : {final_path, part}) {
      if (state.done) break;
      if (fs::is_regular_file(candidate, ec) &&
          static_cast<int64_t>(fs::file_size(candidate, ec)) == f.size()) {
        auto sha = Sha256FileHex(candidate);
        if (sha.ok() && *sha == f.sha256()) {
          if (candidate == part) {
            fs::rename(part, final_path, ec);
            if (ec) return IoError("cannot rename", part, ec.value());
          }
          state.done = true;
        }
      }
    }
    if (state.done) {
      ++plan.files_kept;
      plan.bytes_done += f.size();
      continue;
    }
    started = true;
    plan.file = f.name();
    plan.offset = 0;
    if (fs::is_regular_file(part, ec)) {
      auto size = static_cast<int64_t>(fs::file_size(part, ec));
      if (!ec && size < f.size()) {
        plan.offset = size;
      } else {
        fs::remove(part, ec);  // too long or unreadable: start the file again
      }
    }
    plan.bytes_done += plan.offset;
  }
  // The server also sends the checkpoint's own manifest.json, which the record does not list;
  // fetch it when it is missing (its size and sha256 come with its first message).
  if (!started && !files_.count(kManifest) && !fs::is_regular_file(PathOf(kManifest), ec)) {
    started = true;
    plan.file = kManifest;
    plan.offset = 0;
    if (fs::is_regular_file(PathOf(kManifest) + ".part", ec)) {
      plan.offset = static_cast<int64_t>(fs::file_size(PathOf(kManifest) + ".part", ec));
      if (ec) plan.offset = 0;
    }
  }
  plan.complete = !started;
  bytes_done_ = plan.bytes_done;
  plan_ = plan;
  planned_ = true;
  return plan;
}

Status CheckpointDownload::OpenFile(const std::string& name, int64_t offset) {
  const std::string part = PathOf(name) + ".part";
  // Created (or opened) without following a symlink that appeared since Plan.
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot write", part, errno);
  ::close(fd);
  auto mode = std::ios::binary | std::ios::out | (offset > 0 ? std::ios::app : std::ios::trunc);
  out_ = std::make_unique<std::ofstream>(part, mode);
  if (!*out_) return IoError("cannot write", part, errno);
  current_ = name;
  current_offset_ = offset;
  return Status::Ok();
}

Status CheckpointDownload::CloseAndVerify() {
  const std::string name = current_;
  const std::string part = PathOf(name) + ".part";
  current_.clear();
  out_->flush();
  const bool write_ok = static_cast<bool>(*out_);
  out_.reset();
  if (!write_ok) return IoError("cannot write", part, errno);
  FileState& state = files_[name];
  std::error_code ec;
  if (current_offset_ != state.size) {
    return DataLoss("file " + name + ": the server sent " + std::to_string(current_offset_) +
                    " of its " + std::to_string(state.size) + " bytes");
  }
  DYT_ASSIGN_OR_RETURN(std::string sha, Sha256FileHex(part));
  if (sha != state.sha256) {
    fs::remove(part, ec);
    return DataLoss("file " + name + ": sha256 mismatch (got " + sha + ", the manifest says " +
                    state.sha256 + "); removed it, run pull again");
  }
  fs::rename(part, PathOf(name), ec);
  if (ec) return IoError("cannot rename", part, ec.value());
  state.done = true;
  return Status::Ok();
}

Status CheckpointDownload::Consume(const v1::DownloadCheckpointResponse& m) {
  if (!planned_) return FailedPrecondition("CheckpointDownload: Plan() must come first");
  if (first_message_ && m.has_checkpoint()) {
    const auto& c = m.checkpoint();
    bool same = c.step() == checkpoint_.step() && c.files_size() == checkpoint_.files_size();
    for (int i = 0; same && i < c.files_size(); ++i) {
      same = c.files(i).name() == checkpoint_.files(i).name() &&
             c.files(i).size() == checkpoint_.files(i).size() &&
             c.files(i).sha256() == checkpoint_.files(i).sha256();
    }
    if (!same) {
      return FailedPrecondition("checkpoint at step " + std::to_string(checkpoint_.step()) +
                                " changed on the server during the download; run pull again");
    }
  }
  first_message_ = false;
  if (m.file().empty()) {
    if (!m.data().empty()) return DataLoss("the server sent data without a file name");
    return Status::Ok();
  }
  DYT_RETURN_IF_ERROR(CheckServerFileName(m.file()));
  auto it = files_.find(m.file());
  if (it == files_.end()) {
    // A file the record does not list (the server adds manifest.json) is taken only with its
    // size and sha256 in its first message, so it is verified like the others.
    if (m.sha256().empty() || m.file() == current_) {
      return DataLoss("the server sent file '" + m.file() +
                      "', which the checkpoint does not list, without its size and sha256");
    }
    it = files_.emplace(m.file(), FileState{m.file_size(), m.sha256(), false}).first;
    bytes_total_ += m.file_size();
  }
  FileState& state = it->second;
  if (m.file() != current_) {
    if (!current_.empty()) DYT_RETURN_IF_ERROR(CloseAndVerify());
    if (state.done) return DataLoss("the server sent file " + m.file() + " twice");
    const int64_t start = m.file() == plan_.file ? plan_.offset : 0;
    if (m.offset() != start) {
      return DataLoss("file " + m.file() + ": the server started at byte " +
                      std::to_string(m.offset()) + ", expected " + std::to_string(start));
    }
    if ((m.file_size() != 0 && m.file_size() != state.size) ||
        (!m.sha256().empty() && m.sha256() != state.sha256)) {
      return DataLoss("file " + m.file() + ": the stream's size/sha256 (" +
                      std::to_string(m.file_size()) + ", " + m.sha256() +
                      ") disagree with the checkpoint's manifest (" + std::to_string(state.size) +
                      ", " + state.sha256 + ")");
    }
    DYT_RETURN_IF_ERROR(OpenFile(m.file(), start));
  } else if (m.offset() != current_offset_) {
    return DataLoss("file " + m.file() + ": chunk at byte " + std::to_string(m.offset()) +
                    ", expected " + std::to_string(current_offset_));
  }
  const auto n = static_cast<int64_t>(m.data().size());
  if (current_offset_ + n > state.size) {
    return DataLoss("file " + m.file() + ": the server sent more than its " +
                    std::to_string(state.size) + " bytes");
  }
  out_->write(m.data().data(), n);
  if (!*out_) return IoError("cannot write", PathOf(m.file()) + ".part", errno);
  current_offset_ += n;
  bytes_done_ += n;
  bytes_received_ += n;
  return Status::Ok();
}

Status CheckpointDownload::Finish() {
  if (!current_.empty()) DYT_RETURN_IF_ERROR(CloseAndVerify());
  for (const auto& f : checkpoint_.files()) {
    if (!files_[f.name()].done) {
      return DataLoss("the download ended before file " + f.name() + " (run pull again to resume)");
    }
  }
  return Status::Ok();
}

}  // namespace dyt::cli
