// What the host emulation of the CUDA runtime (cuda_runtime_emu.cc) offers the other emulated
// parts (tests/cuda/simt's kernel launches).
#pragma once

#include <cuda_runtime_api.h>

namespace dyt::emu {

// Makes `err` the calling thread's pending error: cudaPeekAtLastError() returns it and
// cudaGetLastError() returns and clears it, as after a failed launch on a GPU.
void RecordLaunchError(cudaError_t err);

}  // namespace dyt::emu
