// CheckpointDownload: writes the DownloadCheckpoint stream of one checkpoint into a directory,
// verifying every file and resuming a broken download.
//
// Each file is written to DIR/<name>.part, appended chunk by chunk in order, then checked
// (size and sha256 against the checkpoint's manifest, which ListCheckpoints and the stream's
// first message of each file both carry; a disagreement between the two is an error), then
// renamed to DIR/<name>. A file whose check fails is deleted so the next run starts it again.
//
// Resume: Plan() looks at DIR. Files already there whose size and sha256 match are kept; the
// first file that is not done is where the stream must start: at the size of its .part file
// (file + offset in DownloadCheckpointRequest). Files after it are downloaded again from 0.
//
// Names from the server are never trusted: a file name that is empty, ".", "..", or contains
// '/', '\\' or NUL is refused (DATA_LOSS) before anything is written, in the manifest and in
// the stream.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "dyt/v1/job.pb.h"
#include "dyt/v1/job_service.pb.h"

namespace dyt::cli {

// OK, or DATA_LOSS "refusing file name '../x' from the server: ...".
Status CheckServerFileName(const std::string& name);

struct DownloadPlan {
  bool complete = false;    // every file is already in DIR and verified
  std::string file;         // where the stream must start ...
  int64_t offset = 0;       // ... and at which byte
  int64_t bytes_done = 0;   // bytes already on disk that need not be fetched again
  int64_t bytes_total = 0;  // the checkpoint's size
  int files_kept = 0;       // files already complete and verified
};

class CheckpointDownload {
 public:
  // Downloads `checkpoint` (as ListCheckpoints described it) into `dir` (created if missing).
  CheckpointDownload(std::string dir, v1::CheckpointRecord checkpoint);
  ~CheckpointDownload();
  CheckpointDownload(const CheckpointDownload&) = delete;
  CheckpointDownload& operator=(const CheckpointDownload&) = delete;

  // Inspects `dir` (hashing complete files) and says where to start. Call once, first.
  StatusOr<DownloadPlan> Plan();

  // Takes one message of the stream. Chunks must come in order: a file's chunks contiguous
  // from the planned offset (0 for every later file), files in manifest order.
  Status Consume(const v1::DownloadCheckpointResponse& message);

  // After the stream ended OK: verifies and renames the last file and checks that every file
  // of the checkpoint is in place.
  Status Finish();

  // Bytes on disk for this checkpoint so far (kept + written), for a progress bar.
  int64_t bytes_done() const { return bytes_done_; }
  int64_t bytes_total() const { return bytes_total_; }
  // Bytes this run received from the server.
  int64_t bytes_received() const { return bytes_received_; }

 private:
  struct FileState {
    int64_t size = 0;
    std::string sha256;
    bool done = false;
  };
  std::string PathOf(const std::string& name) const { return dir_ + "/" + name; }
  Status OpenFile(const std::string& name, int64_t offset);
  Status CloseAndVerify();

  std::string dir_;
  v1::CheckpointRecord checkpoint_;
  std::map<std::string, FileState> files_;
  bool planned_ = false;
  DownloadPlan plan_;
  bool first_message_ = true;
  std::string current_;  // the file being written; empty: none
  int64_t current_offset_ = 0;
  std::unique_ptr<std::ofstream> out_;
  int64_t bytes_done_ = 0;
  int64_t bytes_total_ = 0;
  int64_t bytes_received_ = 0;
};

}  // namespace dyt::cli
