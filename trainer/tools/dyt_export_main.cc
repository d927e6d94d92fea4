// dyt-export: writes a checkpoint's model as model.safetensors + config.json for use outside
// dyt (docs/checkpoints.md describes both files).
//
//   dyt-export --checkpoint STORE/step-00000123 --output OUTDIR [--dtype f32|bf16]
//   dyt-export --store STORE --output OUTDIR [--dtype f32|bf16]   (latest intact checkpoint)
//
// The checkpoint is fully verified (manifest, SHA-256, shapes) before anything is written.
// Exit codes: 0 done, 1 failure (e.g. damaged checkpoint), 2 invalid arguments.
#include <CLI/CLI.hpp>

#include "common/command_line.h"
#include "common/logging.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/model_export.h"

namespace {
constexpr int kExitFailure = 1;
constexpr int kExitBadArgs = 2;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dyt-export: export a dyt checkpoint's model as safetensors + config.json"};
  std::string checkpoint, store, output, dtype_name = "f32", log_level = "info";
  auto* checkpoint_opt =
      app.add_option("--checkpoint", checkpoint, "a checkpoint directory (STORE/step-N)");
  auto* store_opt =
      app.add_option("--store", store, "an artifact store: export its latest intact checkpoint");
  checkpoint_opt->excludes(store_opt);
  app.add_option("--output", output, "output directory (created if needed)")->required();
  app.add_option("--dtype", dtype_name, "f32 (exact) or bf16 (round to nearest even)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  dyt::AddLogLevelOption(app, log_level);
  if (auto exit = dyt::ParseCommandLine(app, argc, argv)) return *exit;
  dyt::InitLogging("dyt-export", log_level);
  if (checkpoint.empty() == store.empty()) {
    spdlog::error("give exactly one of --checkpoint or --store");
    return kExitBadArgs;
  }
  const auto dtype = dyt::ParseExportDtype(dtype_name);
  if (!dtype.ok()) {
    spdlog::error("{}", dtype.status().message());
    return kExitBadArgs;
  }

  // Before the checkpoint is read (seconds for a large one): an --output that would overwrite
  // it. ExportModel checks again for --store, whose checkpoint is known only once found.
  if (const dyt::Status where = dyt::CheckExportDir(output, checkpoint); !where.ok()) {
    spdlog::error("{}", where.message());
    return kExitBadArgs;
  }

  dyt::CheckpointState state;
  std::string source;
  if (!checkpoint.empty()) {
    auto loaded = dyt::LoadCheckpoint(checkpoint, nullptr, dyt::CheckpointUse::kWeights);
    if (!loaded.ok()) {
      spdlog::error("{}", loaded.status().ToString());
      return kExitFailure;
    }
    state = std::move(loaded).value();
    source = checkpoint;
  } else {
    auto point = dyt::FindLatestGood(store, nullptr);
    if (!point.ok()) {
      spdlog::error("{}", point.status().ToString());
      return kExitFailure;
    }
    for (const std::string& w : point->warnings) spdlog::warn("{}", w);
    state = std::move(point->state);
    source = point->dir;
  }

  // Again now that the checkpoint is known (--store): an --output inside it is the user's
  // mistake (exit 2); whatever ExportModel then fails at is a failure (exit 1).
  if (const dyt::Status where = dyt::CheckExportDir(output, source); !where.ok()) {
    spdlog::error("{}", where.message());
    return kExitBadArgs;
  }
  const dyt::Status s = dyt::ExportModel(state, *dtype, source, output);
  if (!s.ok()) {
    spdlog::error("export failed: {}", s.ToString());
    return kExitFailure;
  }
  spdlog::info("exported {} (step {}, {}) to {}/model.safetensors and {}/config.json", source,
               state.step, dtype_name, output, output);
  return 0;
}
