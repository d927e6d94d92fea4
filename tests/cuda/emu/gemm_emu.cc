// Host emulation of the Linear layer's cuBLASLt products (trainer/cuda/gemm.h) through the
// CPU backend's fp32 LinearForward, under the GPU contract (bf16 in, fp32 accumulate, one
// rounding of each bf16 output). Shared by the host emulation (tests/cuda/emu) and the SIMT
// emulator's builds (tests/cuda/simt), which run our kernels but not cuBLAS.
#include <memory>
#include <vector>

#include "tests/cuda/emu/host_tensors.h"
#include "trainer/cpu/kernels.h"
#include "trainer/cuda/gemm.h"

namespace dyt::cuda {

using emu::StoreBf16;
using emu::ToFloat;
using emu::Transpose;

struct Gemm::Impl {
  size_t plans = 0;  // problems seen, as the real cache counts them
};

Gemm::Gemm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gemm::Gemm(Gemm&&) noexcept = default;
Gemm& Gemm::operator=(Gemm&&) noexcept = default;
Gemm::~Gemm() = default;
StatusOr<Gemm> Gemm::Create() { return Gemm(std::make_unique<Impl>()); }
size_t Gemm::cached_plans() const { return impl_->plans; }

Status Gemm::Forward(bf16* y, const bf16* x, const bf16* w, int64_t N, int in, int out,
                     cudaStream_t) {
  const std::vector<float> xf = ToFloat(x, N * in), wf = ToFloat(w, int64_t(out) * in);
  std::vector<float> yf(static_cast<size_t>(N * out));
  cpu::LinearForward(yf.data(), xf.data(), wf.data(), N, in, out);
  StoreBf16(y, yf.data(), N * out);
  return Status::Ok();
}
Status Gemm::BackwardData(bf16* dx, const bf16* dy, const bf16* w, int64_t N, int in, int out,
                          bool accumulate, cudaStream_t) {
  // dx[N, in] = dy[N, out] @ W[out, in]: a Linear forward with the transposed weight.
  const std::vector<float> dyf = ToFloat(dy, N * out);
  const std::vector<float> wt = Transpose(ToFloat(w, int64_t(out) * in), out, in);
  std::vector<float> dxf(static_cast<size_t>(N * in));
  cpu::LinearForward(dxf.data(), dyf.data(), wt.data(), N, out, in);
  if (accumulate) {
    for (int64_t i = 0; i < N * in; ++i) dxf[size_t(i)] += __bfloat162float(dx[i]);
  }
  StoreBf16(dx, dxf.data(), N * in);
  return Status::Ok();
}
Status Gemm::BackwardWeight(float* dw, const bf16* dy, const bf16* x, int64_t N, int in, int out,
                            bool accumulate, cudaStream_t) {
  // dW[out, in] = dy^T[out, N] @ x[N, in]: a Linear forward of dy^T with the weight x^T.
  const std::vector<float> dyt = Transpose(ToFloat(dy, N * out), N, out);
  const std::vector<float> xt = Transpose(ToFloat(x, N * in), N, in);
  std::vector<float> dwf(static_cast<size_t>(int64_t(out) * in));
  if (N > 0) cpu::LinearForward(dwf.data(), dyt.data(), xt.data(), out, int(N), in);
  for (int64_t i = 0; i < int64_t(out) * in; ++i) {
    dw[i] = accumulate ? dw[i] + dwf[size_t(i)] : dwf[size_t(i)];
  }
  return Status::Ok();
}

}  // namespace dyt::cuda
