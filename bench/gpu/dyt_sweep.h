// The DyT kernel variant sweep of dyt-gpu-layer-bench (--sweep): every compiled-in
// configuration of the fused DyT forward (tuning::DytForwardConfigs, with several grids and
// block shapes) and backward (tuning::DytBackwardConfigs), checked and timed, then a compact
// table of the best per kernel and shape.
#pragma once

#include <string>

namespace dyt::bench {

// Runs the sweep on the current device; writes every row to `csv` when not empty. Returns the
// process exit code: 0, or 1 when any variant failed its check or its launch.
int RunDytSweep(const std::string& csv);

}  // namespace dyt::bench
