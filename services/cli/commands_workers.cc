// dytctl workers: list the workers; drain, undrain and remove one (admins; docs/cli.md).
#include <nlohmann/json.hpp>
#include <string>

#include "services/cli/client.h"
#include "services/cli/command_util.h"
#include "services/cli/commands.h"
#include "services/cli/format.h"

namespace dyt::cli {
namespace {

// The DRAINING column: "-", or how long ago and why ("5m ago: new disks").
std::string DrainText(const v1::WorkerStatus& w, int64_t now) {
  if (!w.draining()) return "-";
  std::string text = w.drain_since().seconds() > 0 ? Age(w.drain_since(), now) + " ago" : "yes";
  if (!w.drain_reason().empty()) text += ": " + w.drain_reason();
  return text;
}

// What `workers drain|undrain` prints: the worker as the scheduler now has it.
int PrintDrained(const CommandContext& ctx, const v1::WorkerStatus& w, bool preempt) {
  if (ctx.json) {
    *ctx.out << ToJson(w) << "\n";
    return kExitOk;
  }
  if (!w.draining()) {
    *ctx.out << "worker " << w.id() << " takes new work\n";
    return kExitOk;
  }
  *ctx.out << "worker " << w.id() << " is draining: no new work goes to it";
  if (w.job_ids_size() == 0) {
    *ctx.out << "; it runs no job\n";
    return kExitOk;
  }
  std::string jobs;
  for (const auto& j : w.job_ids()) jobs += (jobs.empty() ? "" : ", ") + j;
  *ctx.out << (preempt ? "; stopping with a checkpoint and requeueing: "
                       : "; running until they end: ")
           << jobs << "\n";
  return kExitOk;
}

}  // namespace

int RunWorkers(const CommandContext& ctx) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  auto workers = client.ListWorkers();
  if (!workers.ok()) return Fail(ctx, workers.status());
  if (ctx.json) {
    v1::ListWorkersResponse response;
    for (auto& w : *workers) *response.add_workers() = std::move(w);
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  if (workers->empty()) {
    *ctx.out << "no workers registered\n";
    return kExitOk;
  }
  const int64_t now = NowUnix();
  Table table(
      {"ID", "HOST", "KIND", "SLOTS", "BUSY", "CONNECTED", "LAST HEARTBEAT", "JOBS", "DRAINING"});
  for (const auto& w : *workers) {
    std::string jobs;
    for (const auto& j : w.job_ids()) jobs += (jobs.empty() ? "" : ",") + j;
    std::string kind =
        w.slot_kind() + (w.device_name().empty() ? "" : " (" + w.device_name() + ")");
    table.AddRow({w.id(), w.hostname(), kind, std::to_string(w.slots()),
                  std::to_string(w.slots_busy()), w.connected() ? "yes" : "no",
                  w.last_heartbeat().seconds() > 0 ? Age(w.last_heartbeat(), now) + " ago" : "-",
                  jobs.empty() ? "-" : jobs, DrainText(w, now)});
  }
  table.Print(*ctx.out);
  return kExitOk;
}

int RunWorkerDrain(const CommandContext& ctx, const WorkerDrainArgs& args) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  v1::DrainWorkerRequest request;
  request.set_worker_id(args.id);
  request.set_drain(args.drain);
  request.set_reason(args.reason);
  request.set_preempt(args.preempt);
  auto worker = client.DrainWorker(request);
  if (!worker.ok()) return Fail(ctx, worker.status());
  return PrintDrained(ctx, *worker, args.preempt);
}

int RunWorkerRemove(const CommandContext& ctx, const std::string& id) {
  DytClient client(ctx.config);
  if (Status s = client.Connect(); !s.ok()) return Fail(ctx, s);
  if (Status s = client.RemoveWorker(id); !s.ok()) return Fail(ctx, s);
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"worker_id", id}, {"removed", true}}.dump() << "\n";
  } else {
    *ctx.out << "worker " << id << " removed\n";
  }
  return kExitOk;
}

}  // namespace dyt::cli
