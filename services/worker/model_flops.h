// Training FLOPs per token of a LLaMA-style model, for MFU (model FLOPs utilisation).
//
// The PaLM convention (Chowdhery et al. 2022, appendix B): forward + backward cost
//   6 * N  +  12 * n_layers * dim * seq_len
// FLOPs per token, where N counts the parameters that take part in matrix multiplies (all of
// them except an untied input embedding, which is a lookup) and the second term is attention's
// QK^T and AV products (counted in full, as PaLM does, although causal masking could skip half).
// Norms, RoPE, softmax and the optimizer are left out. Returns 0 when the shape is unknown.
#pragma once

#include <cstdint>
#include <string>

#include "services/worker/event_parser.h"

namespace dyt::worker {

// seq_len: the training sequence length (0: the model's max_seq_len).
double TrainingFlopsPerToken(const ModelShape& model, int64_t seq_len);

// MFU: achieved model FLOP/s over the peak of the slots the job holds. 0 when any input is
// not positive.
double ModelFlopsUtilization(double flops_per_token, double tokens_per_s, double peak_flops);

// Dense BF16 peak FLOP/s of a GPU known by its CUDA device name (NVIDIA's datasheets: A100
// 312e12; H100 SXM and H200 SXM 989.4e12, H100 PCIe 756e12, H100 NVL and H200 NVL 835e12), so a
// GPU worker exports MFU without --peak-flops. 0 for a name not in the table.
double KnownGpuPeakFlops(const std::string& device_name);

}  // namespace dyt::worker
