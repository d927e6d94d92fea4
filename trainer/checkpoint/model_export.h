// Exporting a checkpoint's model for use outside dyt: model.safetensors + config.json.
//
// model.safetensors holds the parameters under their ParamLayout names (Meta LLaMA names plus
// the DyT tensors, docs/checkpoints.md), in F32 or BF16, no optimizer state. config.json
// describes the architecture well enough to re-implement the forward pass: every ModelConfig
// field, the normalization formula, the embedding scale, the RoPE convention, and the tensor
// list with shapes.
#pragma once

#include <string>

#include "common/status.h"
#include "trainer/checkpoint/checkpoint_state.h"

namespace dyt {

enum class ExportDtype { kF32, kBF16 };

// "f32" or "bf16"; INVALID_ARGUMENT otherwise.
StatusOr<ExportDtype> ParseExportDtype(const std::string& name);

// The config.json text for `state`'s model. `source` names the checkpoint (recorded in it).
StatusOr<std::string> ExportConfigJson(const CheckpointState& state, ExportDtype dtype,
                                       const std::string& source);

// INVALID_ARGUMENT when `out_dir` is empty, is the checkpoint directory `source` or inside it,
// or holds a checkpoint (manifest.json): exporting there would overwrite a checkpoint's files.
Status CheckExportDir(const std::string& out_dir, const std::string& source);

// Writes <out_dir>/model.safetensors and <out_dir>/config.json (creating out_dir), each via a
// temp file and rename, so a failed export leaves no half-written file under those names.
// `state` must be a loaded checkpoint (LoadCheckpoint / FindLatestGood). Checks CheckExportDir
// first.
Status ExportModel(const CheckpointState& state, ExportDtype dtype, const std::string& source,
                   const std::string& out_dir);

}  // namespace dyt
