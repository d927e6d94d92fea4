// Gemm: cuBLASLt plans cached per problem. The layout mapping is documented in gemm.h.
#include "trainer/cuda/gemm.h"

#include <cublasLt.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/device_buffer.h"

namespace dyt::cuda {
namespace {

enum class Op : uint8_t { kForward, kBackwardData, kBackwardWeight };

const char* OpName(Op op) {
  switch (op) {
    case Op::kForward:
      return "Gemm::Forward";
    case Op::kBackwardData:
      return "Gemm::BackwardData";
    case Op::kBackwardWeight:
      return "Gemm::BackwardWeight";
  }
  return "Gemm";
}

// "Gemm::Forward(N=7, in=33, out=65)": the context of every error.
std::string Where(Op op, int64_t N, int in, int out) {
  std::string s = OpName(op);
  s += "(N=";
  s += std::to_string(N);
  s += ", in=";
  s += std::to_string(in);
  s += ", out=";
  s += std::to_string(out);
  s += ")";
  return s;
}

Status CublasStatus(cublasStatus_t st, const char* call, const std::string& where) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  std::string msg = where;
  msg += ": ";
  msg += call;
  msg += ": ";
  msg += cublasLtGetStatusName(st);
  msg += " (";
  msg += cublasLtGetStatusString(st);
  msg += ")";
  return Internal(std::move(msg));
}

#define DYT_CUBLAS_RETURN_IF_ERROR(expr, where) \
  DYT_RETURN_IF_ERROR(CublasStatus((expr), #expr, (where)))

// The largest power of two (up to 256) that divides the address: what the heuristic may
// assume about the pointer.
uint32_t AlignmentOf(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && (a & (align - 1)) != 0) align >>= 1;
  return align;
}

struct Key {
  Op op;
  bool accumulate;
  int64_t N;
  int in;
  int out;
  uint32_t align[3];  // of A, B and C (= D), in bytes

  bool operator==(const Key& o) const {
    return op == o.op && accumulate == o.accumulate && N == o.N && in == o.in && out == o.out &&
           align[0] == o.align[0] && align[1] == o.align[1] && align[2] == o.align[2];
  }
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = static_cast<uint64_t>(k.N) * 0x9E3779B97F4A7C15ull;
    h ^= (static_cast<uint64_t>(static_cast<uint32_t>(k.in)) << 32) | static_cast<uint32_t>(k.out);
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= (static_cast<uint64_t>(k.op) << 1) | (k.accumulate ? 1u : 0u);
    h ^= (static_cast<uint64_t>(k.align[0]) << 16) ^ (static_cast<uint64_t>(k.align[1]) << 32) ^
         (static_cast<uint64_t>(k.align[2]) << 48);
    h *= 0x94D049BB133111EBull;
    return static_cast<size_t>(h ^ (h >> 31));
  }
};

// One cached problem: the descriptors cublasLtMatmul takes and the chosen algorithm.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr;
  cublasLtMatrixLayout_t b = nullptr;
  cublasLtMatrixLayout_t c = nullptr;  // also D (in place)
  cublasLtMatmulAlgo_t algo{};

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
  }
};

struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  ~Preference() {
    if (p != nullptr) cublasLtMatmulPreferenceDestroy(p);
  }
};

// The column-major problem D[m, n] = op(A) @ op(B) (+ C) that a Key maps to (gemm.h).
struct ColMajor {
  cublasOperation_t ta, tb;
  uint64_t m, n, k;
  int64_t lda, ldb, ldc;
  cudaDataType_t out_type;
};

ColMajor Map(const Key& key) {
  const auto N = static_cast<uint64_t>(key.N);
  const auto in = static_cast<uint64_t>(key.in);
  const auto out = static_cast<uint64_t>(key.out);
  switch (key.op) {
    case Op::kForward:  // y^T[out, N] = W(col [in, out])^T @ x(col [in, N])
      return {CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, key.in, key.in, key.out, CUDA_R_16BF};
    case Op::kBackwardData:  // dx^T[in, N] = W(col [in, out]) @ dy(col [out, N])
      return {CUBLAS_OP_N, CUBLAS_OP_N, in, N, out, key.in, key.out, key.in, CUDA_R_16BF};
    case Op::kBackwardWeight:  // dW^T[in, out] = x(col [in, N]) @ dy(col [out, N])^T
      break;
  }
  return {CUBLAS_OP_N, CUBLAS_OP_T, in, out, N, key.in, key.out, key.in, CUDA_R_32F};
}

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer<unsigned char> workspace;
  std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans;

  ~Impl() {
    plans.clear();
    if (handle != nullptr) cublasLtDestroy(handle);
  }

  // The cached plan for `key`, built on first use.
  StatusOr<const Plan*> GetPlan(const Key& key, const std::string& where) {
    if (auto it = plans.find(key); it != plans.end()) return it->second.get();
    auto plan = std::make_unique<Plan>();
    const ColMajor p = Map(key);

    DYT_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), where);
    DYT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
                                   plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &p.ta, sizeof(p.ta)),
                               where);
    DYT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
                                   plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &p.tb, sizeof(p.tb)),
                               where);
    // Layouts are of the stored (column-major) matrices, before op().
    const bool ta = p.ta == CUBLAS_OP_T;
    const bool tb = p.tb == CUBLAS_OP_T;
    DYT_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_16BF, ta ? p.k : p.m, ta ? p.m : p.k, p.lda),
        where);
    DYT_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_16BF, tb ? p.n : p.k, tb ? p.k : p.n, p.ldb),
        where);
    DYT_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan->c, p.out_type, p.m, p.n, p.ldc),
                               where);

    Preference pref;
    DYT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref.p), where);
    const uint64_t ws = workspace.bytes();
    DYT_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                             sizeof(ws)),
        where);
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; ++i) {
      const uint32_t align = key.align[i < 3 ? i : 2];
      DYT_CUBLAS_RETURN_IF_ERROR(
          cublasLtMatmulPreferenceSetAttribute(pref.p, align_attr[i], &align, sizeof(align)),
          where);
    }

    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    DYT_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmulAlgoGetHeuristic(handle, plan->desc, plan->a, plan->b, plan->c, plan->c,
                                       pref.p, 1, &result, &found),
        where);
    if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS) {
      return Internal(where + ": cublasLtMatmulAlgoGetHeuristic found no algorithm (alignment " +
                      std::to_string(key.align[0]) + "/" + std::to_string(key.align[1]) + "/" +
                      std::to_string(key.align[2]) + " bytes)");
    }
    plan->algo = result.algo;
    const Plan* raw = plan.get();
    plans.emplace(key, std::move(plan));
    return raw;
  }

  // D = A_op @ B_op (+ D when accumulate), per the plan of `key`.
  Status Run(const Key& key, void* d, const void* a, const void* b, cudaStream_t stream) {
    const std::string where = Where(key.op, key.N, key.in, key.out);
    DYT_ASSIGN_OR_RETURN(const Plan* plan, GetPlan(key, where));
    const float alpha = 1.f;
    const float beta = key.accumulate ? 1.f : 0.f;
    DYT_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmul(handle, plan->desc, &alpha, a, plan->a, b, plan->b, &beta, d, plan->c, d,
                       plan->c, &plan->algo, workspace.get(), workspace.bytes(), stream),
        where);
    return Status::Ok();
  }
};

namespace {

Status CheckArgs(Op op, const void* out_ptr, const void* a, const void* b, int64_t N, int in,
                 int out) {
  if (N < 0 || in <= 0 || out <= 0) {
    return InvalidArgument(Where(op, N, in, out) + ": need N >= 0, in > 0, out > 0");
  }
  if (N > 0 && (out_ptr == nullptr || a == nullptr || b == nullptr)) {
    return InvalidArgument(Where(op, N, in, out) + ": null pointer");
  }
  return Status::Ok();
}

}  // namespace

Gemm::Gemm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gemm::Gemm(Gemm&&) noexcept = default;
Gemm& Gemm::operator=(Gemm&&) noexcept = default;
Gemm::~Gemm() = default;

StatusOr<Gemm> Gemm::Create() {
  auto impl = std::make_unique<Impl>();
  DYT_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&impl->handle), std::string("Gemm::Create"));
  DYT_ASSIGN_OR_RETURN(impl->workspace, DeviceBuffer<unsigned char>::Allocate(kWorkspaceBytes));
  return Gemm(std::move(impl));
}

size_t Gemm::cached_plans() const { return impl_->plans.size(); }

Status Gemm::Forward(bf16* y, const bf16* x, const bf16* w, int64_t N, int in, int out,
                     cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(CheckArgs(Op::kForward, y, x, w, N, in, out));
  if (N == 0) return Status::Ok();
  const Key key{Op::kForward, false, N, in, out, {AlignmentOf(w), AlignmentOf(x), AlignmentOf(y)}};
  return impl_->Run(key, y, w, x, stream);
}

Status Gemm::BackwardData(bf16* dx, const bf16* dy, const bf16* w, int64_t N, int in, int out,
                          bool accumulate, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(CheckArgs(Op::kBackwardData, dx, dy, w, N, in, out));
  if (N == 0) return Status::Ok();
  const Key key{Op::kBackwardData,
                accumulate,
                N,
                in,
                out,
                {AlignmentOf(w), AlignmentOf(dy), AlignmentOf(dx)}};
  return impl_->Run(key, dx, w, dy, stream);
}

Status Gemm::BackwardWeight(float* dw, const bf16* dy, const bf16* x, int64_t N, int in, int out,
                            bool accumulate, cudaStream_t stream) {
  DYT_RETURN_IF_ERROR(CheckArgs(Op::kBackwardWeight, dw, dy, x, N, in, out));
  if (N == 0) {
    if (accumulate) return Status::Ok();
    if (dw == nullptr) return InvalidArgument(Where(Op::kBackwardWeight, N, in, out) + ": dw null");
    return CudaStatus(cudaMemsetAsync(dw, 0, sizeof(float) * static_cast<size_t>(out) * in, stream),
                      (Where(Op::kBackwardWeight, N, in, out) + ": cudaMemsetAsync").c_str());
  }
  const Key key{Op::kBackwardWeight,
                accumulate,
                N,
                in,
                out,
                {AlignmentOf(x), AlignmentOf(dy), AlignmentOf(dw)}};
  return impl_->Run(key, dw, x, dy, stream);
}

}  // namespace dyt::cuda
