// Turning CUDA errors into dyt::Status.
#pragma once

#include <cuda_runtime.h>

#include "common/status.h"

namespace dyt::cuda {

// OK for cudaSuccess; otherwise INTERNAL "<what>: cudaErrorName (description)".
Status CudaStatus(cudaError_t err, const char* what);

// After a kernel launch: the launch error (bad configuration, missing kernel image for this
// GPU), if any, as a Status naming `kernel`.
inline Status LaunchStatus(const char* kernel) { return CudaStatus(cudaGetLastError(), kernel); }

}  // namespace dyt::cuda

// Returns the Status of a CUDA runtime call from the enclosing function when it fails; the
// message names the call's text.
#define DYT_CUDA_RETURN_IF_ERROR(expr) DYT_RETURN_IF_ERROR(::dyt::cuda::CudaStatus((expr), #expr))
