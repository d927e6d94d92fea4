// JobServiceImpl: the streaming and artifact RPCs (WatchJob, GetJobLogs, ListCheckpoints,
// DownloadCheckpoint).
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/sha256.h"
#include "scheduler/job_service.h"
#include "scheduler/job_states.h"

namespace dyt {
namespace {

namespace fs = std::filesystem;

constexpr int kDefaultTail = 100;
constexpr int kMaxTail = 10000;
constexpr size_t kLinesPerMessage = 500;
constexpr int kDefaultChunk = 1 << 20;
constexpr int kMinChunk = 4 << 10;
constexpr int kMaxChunk = 4 << 20;

// One plain path component: no '/', not "." or "..", no control characters.
bool IsPlainFileName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

// A checkpoint file name from the store: one plain path component.
Status CheckFileName(const std::string& name) {
  if (!IsPlainFileName(name)) {
    return DataLoss("checkpoint file name '" + name + "' is not a plain file name");
  }
  return Status::Ok();
}

// Is `path` inside `root` once both are resolved (symlinks, ..)?
bool Inside(const fs::path& path, const fs::path& root) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(path, ec);
  if (ec) return false;
  fs::path r = fs::weakly_canonical(root, ec);
  if (ec) return false;
  auto [root_end, _] = std::mismatch(r.begin(), r.end(), p.begin(), p.end());
  return root_end == r.end();
}

bool Exists(const std::string& checkpoint_dir) {
  std::error_code ec;
  return fs::exists(fs::path(checkpoint_dir) / "manifest.json", ec);
}

}  // namespace

Status JobServiceImpl::Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
                             grpc::ServerWriter<v1::WatchJobResponse>* writer) {
  DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
  DYT_RETURN_IF_ERROR(JobFor(caller, Action::kReadJob, request.id()).status());
  std::string last_sent;
  for (bool first = true; !context->IsCancelled(); first = false) {
    // A token revoked or expired while the stream is open ends it (checked every second).
    if (!first) DYT_RETURN_IF_ERROR(Authenticate(*context).status());
    uint64_t version = scheduler_->version();
    DYT_ASSIGN_OR_RETURN(v1::JobRecord record, scheduler_->GetJob(request.id()));
    DYT_ASSIGN_OR_RETURN(v1::Job job, Assemble(record));
    std::string bytes = job.SerializeAsString();
    if (bytes != last_sent) {
      v1::WatchJobResponse response;
      *response.mutable_job() = std::move(job);
      if (!writer->Write(response)) return Status(StatusCode::kCancelled, "watcher went away");
      last_sent = std::move(bytes);
    }
    if (IsTerminalJobState(record.job().state())) return Status::Ok();
    scheduler_->WaitForChange(version, std::chrono::seconds(1));
  }
  return Status(StatusCode::kCancelled, "watcher went away");
}

Status JobServiceImpl::Logs(grpc::ServerContext* context, const v1::GetJobLogsRequest& request,
                            grpc::ServerWriter<v1::GetJobLogsResponse>* writer) {
  DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
  DYT_RETURN_IF_ERROR(JobFor(caller, Action::kReadJob, request.id()).status());
  if (request.tail() < 0 || request.tail() > kMaxTail) {
    return InvalidArgument("tail: must be in [0, " + std::to_string(kMaxTail) +
                           "] (0: " + std::to_string(kDefaultTail) + ")");
  }
  DYT_ASSIGN_OR_RETURN(v1::JobRecord record, scheduler_->GetJob(request.id()));
  auto send = [&](const std::vector<v1::LogLine>& lines) -> Status {
    for (size_t i = 0; i < lines.size(); i += kLinesPerMessage) {
      v1::GetJobLogsResponse response;
      for (size_t j = i; j < std::min(lines.size(), i + kLinesPerMessage); ++j) {
        *response.add_lines() = lines[j];
      }
      if (!writer->Write(response)) return Status(StatusCode::kCancelled, "reader went away");
    }
    return Status::Ok();
  };
  size_t tail = request.tail() == 0 ? kDefaultTail : static_cast<size_t>(request.tail());
  JobLogs::Tail got = scheduler_->logs().Last(request.id(), tail);
  DYT_ASSIGN_OR_RETURN(v1::Job job, Assemble(record));
  if (std::string notice = LogsNotice(scheduler_->logs(), job, got, tail); !notice.empty()) {
    v1::GetJobLogsResponse response;
    response.set_notice(std::move(notice));
    if (!writer->Write(response)) return Status(StatusCode::kCancelled, "reader went away");
  }
  DYT_RETURN_IF_ERROR(send(got.lines));
  if (!request.follow()) return Status::Ok();
  uint64_t next = got.next;
  while (!context->IsCancelled()) {
    // A token revoked or expired while the stream is open ends it (checked every second).
    DYT_RETURN_IF_ERROR(Authenticate(*context).status());
    got = scheduler_->logs().Since(request.id(), next, std::chrono::seconds(1));
    DYT_RETURN_IF_ERROR(send(got.lines));
    next = got.next;
    if (got.finished) return Status::Ok();
    DYT_ASSIGN_OR_RETURN(record, scheduler_->GetJob(request.id()));
    if (IsTerminalJobState(record.job().state())) {
      got = scheduler_->logs().Since(request.id(), next, std::chrono::milliseconds(0));
      return send(got.lines);
    }
  }
  return Status(StatusCode::kCancelled, "reader went away");
}

StatusOr<std::vector<v1::CheckpointRecord>> JobServiceImpl::Checkpoints(const std::string& job_id,
                                                                        const Caller& caller) {
  DYT_RETURN_IF_ERROR(JobFor(caller, Action::kReadJob, job_id, "job_id").status());
  // Checkpoints nobody reported (saved after their worker died) are listed too. A failed scan
  // still lists what the store has.
  AdoptUnreportedCheckpoints(job_id);
  DYT_ASSIGN_OR_RETURN(auto all, store_->ListCheckpoints(job_id));
  std::vector<v1::CheckpointRecord> present;
  for (auto& c : all) {
    if (Exists(c.path())) present.push_back(std::move(c));
  }
  return present;
}

Status JobServiceImpl::Download(grpc::ServerContext* context,
                                const v1::DownloadCheckpointRequest& request,
                                grpc::ServerWriter<v1::DownloadCheckpointResponse>* writer) {
  DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
  if (request.step() < 0) return InvalidArgument("step: must be >= 0 (0: the latest)");
  if (request.offset() < 0) return InvalidArgument("offset: must be >= 0");
  if (!request.file().empty() && !IsPlainFileName(request.file())) {
    return InvalidArgument(
        "file: must be one file name of the checkpoint, without '/' or '..' "
        "(got '" +
        request.file() + "')");
  }
  if (request.offset() > 0 && request.file().empty()) {
    return InvalidArgument("offset: needs file (the file the offset is in)");
  }
  int chunk = request.chunk_bytes() == 0 ? kDefaultChunk : request.chunk_bytes();
  if (chunk < kMinChunk || chunk > kMaxChunk) {
    return InvalidArgument("chunk_bytes: must be in [" + std::to_string(kMinChunk) + ", " +
                           std::to_string(kMaxChunk) + "] (0: 1 MiB)");
  }
  DYT_ASSIGN_OR_RETURN(auto present, Checkpoints(request.job_id(), caller));
  const v1::CheckpointRecord* checkpoint = nullptr;
  for (const auto& c : present) {
    if (request.step() == 0 || c.step() == request.step()) checkpoint = &c;
  }
  if (checkpoint == nullptr) {
    return NotFound("job " + request.job_id() + ": " +
                    (request.step() == 0
                         ? std::string("has no checkpoint")
                         : "no checkpoint at step " + std::to_string(request.step())));
  }
  const std::string& root = scheduler_->options().artifact_root;
  if (root.empty() || !Inside(checkpoint->path(), root)) {
    return FailedPrecondition("checkpoint " + checkpoint->path() +
                              " is not inside the artifact root");
  }
  // The files to send: the recorded ones, then manifest.json (hashed now).
  struct File {
    std::string name;
    int64_t size = 0;
    std::string sha256;
  };
  std::vector<File> files;
  for (const auto& f : checkpoint->files()) {
    DYT_RETURN_IF_ERROR(CheckFileName(f.name()));
    files.push_back({f.name(), f.size(), f.sha256()});
  }
  fs::path dir(checkpoint->path());
  {
    DYT_ASSIGN_OR_RETURN(std::string sha, Sha256FileHex((dir / "manifest.json").string()));
    std::error_code ec;
    auto size = fs::file_size(dir / "manifest.json", ec);
    if (ec) return DataLoss((dir / "manifest.json").string() + ": " + ec.message());
    files.push_back({"manifest.json", static_cast<int64_t>(size), sha});
  }
  size_t first = 0;
  if (!request.file().empty()) {
    while (first < files.size() && files[first].name != request.file()) ++first;
    if (first == files.size()) {
      return InvalidArgument("file: '" + request.file() + "' is not a file of checkpoint step " +
                             std::to_string(checkpoint->step()));
    }
    if (request.offset() > files[first].size) {
      return InvalidArgument("offset: " + std::to_string(request.offset()) +
                             " is past the end of " + request.file() + " (" +
                             std::to_string(files[first].size) + " bytes)");
    }
  }
  bool sent_header = false;
  std::vector<char> buffer(static_cast<size_t>(chunk));
  for (size_t i = first; i < files.size(); ++i) {
    const File& file = files[i];
    fs::path path = dir / file.name;
    std::ifstream in(path, std::ios::binary);
    if (!in) return DataLoss(path.string() + ": cannot open");
    std::error_code ec;
    auto size = static_cast<int64_t>(fs::file_size(path, ec));
    if (ec || size != file.size) {
      return DataLoss(path.string() + ": size " + std::to_string(size) + " differs from the " +
                      std::to_string(file.size) + " bytes recorded");
    }
    int64_t offset = i == first ? request.offset() : 0;
    in.seekg(offset);
    bool first_of_file = true;
    do {
      in.read(buffer.data(), static_cast<std::streamsize>(std::min<int64_t>(chunk, size - offset)));
      std::streamsize n = in.gcount();
      v1::DownloadCheckpointResponse response;
      if (!sent_header) *response.mutable_checkpoint() = *checkpoint;
      sent_header = true;
      response.set_file(file.name);
      response.set_offset(offset);
      response.set_data(buffer.data(), static_cast<size_t>(n));
      if (first_of_file) {
        response.set_file_size(file.size);
        response.set_sha256(file.sha256);
        first_of_file = false;
      }
      if (context->IsCancelled() || !writer->Write(response)) {
        return Status(StatusCode::kCancelled, "reader went away");
      }
      offset += n;
      if (n == 0 && offset < size) return DataLoss(path.string() + ": short read");
    } while (offset < size);
  }
  return Status::Ok();
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* context,
                                      const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::WatchJobResponse>* writer) {
  return StreamGuard(metrics_, "WatchJob", [&] { return Watch(context, *request, writer); });
}

grpc::Status JobServiceImpl::GetJobLogs(grpc::ServerContext* context,
                                        const v1::GetJobLogsRequest* request,
                                        grpc::ServerWriter<v1::GetJobLogsResponse>* writer) {
  return StreamGuard(metrics_, "GetJobLogs", [&] { return Logs(context, *request, writer); });
}

grpc::Status JobServiceImpl::ListCheckpoints(grpc::ServerContext* context,
                                             const v1::ListCheckpointsRequest* request,
                                             v1::ListCheckpointsResponse* response) {
  return RpcGuard(metrics_, "ListCheckpoints", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    DYT_ASSIGN_OR_RETURN(auto present, Checkpoints(request->job_id(), caller));
    for (auto& c : present) *response->add_checkpoints() = std::move(c);
    return Status::Ok();
  });
}

grpc::Status JobServiceImpl::DownloadCheckpoint(
    grpc::ServerContext* context, const v1::DownloadCheckpointRequest* request,
    grpc::ServerWriter<v1::DownloadCheckpointResponse>* writer) {
  return StreamGuard(metrics_, "DownloadCheckpoint",
                     [&] { return Download(context, *request, writer); });
}

}  // namespace dyt
