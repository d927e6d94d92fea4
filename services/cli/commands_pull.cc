// dytctl pull: downloads a checkpoint with verification and resume.
#include <nlohmann/json.hpp>

#include "services/cli/checkpoint_download.h"
#include "services/cli/client.h"
#include "services/cli/command_util.h"
#include "services/cli/commands.h"
#include "services/cli/format.h"

namespace dyt::cli {
namespace {

// The checkpoint at `step` (0: the latest) of the job, from ListCheckpoints.
StatusOr<v1::CheckpointRecord> FindCheckpoint(DytClient& client, const std::string& id,
                                              int64_t step) {
  DYT_ASSIGN_OR_RETURN(auto list, client.ListCheckpoints(id));
  if (list.empty()) return NotFound("job " + id + " has no checkpoints yet");
  if (step == 0) return list.back();
  std::string steps;
  for (const auto& c : list) {
    if (c.step() == step) return c;
    steps += (steps.empty() ? "" : ", ") + std::to_string(c.step());
  }
  return NotFound("job " + id + " has no checkpoint at step " + std::to_string(step) +
                  " (it has: " + steps + ")");
}

}  // namespace

int RunPull(const CommandContext& ctx, const PullArgs& args) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto checkpoint = FindCheckpoint(client, args.id, args.step);
  if (!checkpoint.ok()) return Fail(ctx, checkpoint.status());
  CheckpointDownload download(args.dir, *checkpoint);
  auto plan = download.Plan();
  if (!plan.ok()) return Fail(ctx, plan.status());

  if (!plan->complete) {
    v1::DownloadCheckpointRequest request;
    request.set_job_id(args.id);
    request.set_step(checkpoint->step());
    if (plan->offset > 0 || plan->files_kept > 0) {
      request.set_file(plan->file);
      request.set_offset(plan->offset);
    }
    request.set_chunk_bytes(args.chunk_bytes);
    if (plan->bytes_done > 0 && !ctx.json) {
      *ctx.err << "resuming: " << Bytes(plan->bytes_done) << " of " << Bytes(plan->bytes_total)
               << " already in " << args.dir << "\n";
    }
    int64_t shown = -1;
    auto progress = [&](bool final) {
      if (!ctx.tty || ctx.json) return;
      int64_t done = download.bytes_done();
      if (!final && done - shown < (1 << 20)) return;
      shown = done;
      *ctx.err << "\r\033[K" << Bar(done, download.bytes_total(), 30) << " " << Bytes(done) << " / "
               << Bytes(download.bytes_total()) << std::flush;
    };
    Status s = client.Download(request, [&](const v1::DownloadCheckpointResponse& m) {
      Status c = download.Consume(m);
      progress(false);
      return c;
    });
    if (s.ok()) s = download.Finish();
    progress(true);
    if (ctx.tty && !ctx.json) *ctx.err << "\n";
    if (!s.ok()) return Fail(ctx, s);
  }

  if (ctx.json) {
    nlohmann::json j;
    j["job_id"] = args.id;
    j["step"] = checkpoint->step();
    j["dir"] = args.dir;
    j["verified"] = true;
    j["bytes_total"] = download.bytes_total();
    j["bytes_received"] = download.bytes_received();
    j["bytes_resumed"] = plan->bytes_done;
    j["files"] = nlohmann::json::array();
    for (const auto& f : checkpoint->files()) {
      j["files"].push_back({{"name", f.name()}, {"size", f.size()}, {"sha256", f.sha256()}});
    }
    *ctx.out << j.dump(2) << "\n";
  } else {
    *ctx.out << "pulled " << args.id << " step " << checkpoint->step() << " into "
             << args.dir
             // The listed files' size (the first pull also fetches manifest.json; a repeat
             // finds it there): the same number however the files got here.
             << ": " << checkpoint->files_size() << " files, " << Bytes(plan->bytes_total)
             << ", sha256 verified";
    if (plan->complete) {
      *ctx.out << " (already there)";
    } else if (plan->bytes_done > 0) {
      *ctx.out << " (resumed after " << Bytes(plan->bytes_done) << ")";
    }
    *ctx.out << "\n";
  }
  return kExitOk;
}

}  // namespace dyt::cli
