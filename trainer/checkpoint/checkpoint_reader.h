// Reading one checkpoint directory back, trusting nothing.
//
// Every check runs before anything is returned, and nothing partial is ever returned. Each
// error message starts with the checkpoint directory and names the file and the problem:
//   "/store/step-00000123: model.safetensors: sha256 mismatch (file corrupt)"
// Codes: NOT_FOUND (no such directory), DATA_LOSS (incomplete, damaged or inconsistent
// checkpoint), FAILED_PRECONDITION (an intact checkpoint this build cannot or must not use:
// an unknown format version, or a model config other than the expected one).
#pragma once

#include <string>

#include "common/status.h"
#include "trainer/checkpoint/checkpoint_state.h"
#include "trainer/model/config.h"

namespace dyt {

// What the caller takes from a checkpoint: everything (a resume: the stored model config must
// equal the expected one) or the weights alone (a fine-tune from it, an export, sampling: only
// the fields that shape a tensor must be equal, max_seq_len, rope_theta and norm_eps may
// differ; optimizer.safetensors is neither read nor checked, and adam_m/adam_v come back zero).
enum class CheckpointUse { kResume, kWeights };

// Checks, in order: manifest.json exists and parses with a known format version; it lists
// model.safetensors, optimizer.safetensors and state.json; every listed file exists with the
// listed size and SHA-256; state.json parses (known format version, every field present) and
// agrees with the manifest and the directory name on the step; its model config is valid;
// if `expect` is not null, the stored model config equals *expect as far as `use` needs
// (ModelConfigToJson of both compared field by field; the message lists each differing field
// with both values); both tensor files hold exactly the tensors of that config's ParamLayout,
// F32, with their shapes.
StatusOr<CheckpointState> LoadCheckpoint(const std::string& dir, const ModelConfig* expect,
                                         CheckpointUse use = CheckpointUse::kResume);

// The integrity checks of LoadCheckpoint without reading the tensors into memory: manifest,
// sizes, SHA-256 of every file, state.json. Used by retention to find the newest good
// checkpoint. It still reads every byte once (for the digests).
Status VerifyCheckpoint(const std::string& dir);

}  // namespace dyt
