#include "services/worker/model_flops.h"

namespace dyt::worker {

double TrainingFlopsPerToken(const ModelShape& model, int64_t seq_len) {
  if (model.params <= 0 || model.dim <= 0 || model.n_layers <= 0) return 0;
  if (seq_len <= 0) seq_len = model.max_seq_len;
  if (seq_len <= 0) return 0;
  double matmul_params = static_cast<double>(model.params);
  if (!model.tie_embeddings) {
    matmul_params -= static_cast<double>(model.vocab_size) * static_cast<double>(model.dim);
  }
  if (matmul_params <= 0) return 0;
  const double attention = 12.0 * static_cast<double>(model.n_layers) *
                           static_cast<double>(model.dim) * static_cast<double>(seq_len);
  return 6.0 * matmul_params + attention;
}

double ModelFlopsUtilization(double flops_per_token, double tokens_per_s, double peak_flops) {
  if (!(flops_per_token > 0) || !(tokens_per_s > 0) || !(peak_flops > 0)) return 0;
  return flops_per_token * tokens_per_s / peak_flops;
}

double KnownGpuPeakFlops(const std::string& device_name) {
  // Most specific names first: "NVIDIA H100 NVL" must not match the plain H100 row.
  static constexpr struct {
    const char* name_part;
    double flops;
  } kTable[] = {
      {"H100 NVL", 835e12}, {"H200 NVL", 835e12}, {"H100 PCIe", 756e12},
      {"H100", 989.4e12},   {"H200", 989.4e12},   {"A100", 312e12},
  };
  for (const auto& row : kTable) {
    if (device_name.find(row.name_part) != std::string::npos) return row.flops;
  }
  return 0;
}

}  // namespace dyt::worker
