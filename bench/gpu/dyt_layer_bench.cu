// dyt-gpu-layer-bench: how close the fused DyT and RMSNorm kernels come to the GPU's copy
// bandwidth.
//
// All of these kernels are memory-bound (a few flops per byte), so the floor is
// bytes / bandwidth. The ceiling is measured, not taken from the datasheet: a 2 GiB
// device-to-device cudaMemcpy, counting bytes read + written. Each kernel's bytes are the
// fewest it must move (each input read once, each output written once).
//
// Timing: CUDA events around batches of launches (so launch gaps between back-to-back kernels
// are hidden as in training), after a warm-up; the median over batches. Launches rotate among
// several input sets whose total is well above the L2 size, so L2 does not flatter small
// shapes. Inputs are random and non-zero.
//
// Usage: dyt-gpu-layer-bench [--batches B] [--per-batch K] [--csv FILE] [--quick]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/dyt_kernels.h"
#include "trainer/cuda/rmsnorm_kernels.h"

namespace {

using dyt::Status;
using dyt::cuda::bf16;
using dyt::cuda::TanhMode;

#define BENCH_CUDA(expr)                                                       \
  do {                                                                         \
    const cudaError_t bench_err_ = (expr);                                     \
    if (bench_err_ != cudaSuccess) {                                           \
      std::fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cudaGetErrorString(bench_err_));                            \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)

struct Options {
  int batches = 25;
  int per_batch = 10;
  std::string csv;
};

// Random non-zero values: magnitude in [0.05, 1] (times `scale`), random sign. A hash of the
// index, so filling is one pass and reproducible.
template <typename T>
__global__ void FillRandom(T* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 0x9E3779B1u ^ seed ^ static_cast<uint32_t>(i >> 32);
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    const float mag = 0.05f + 0.95f * static_cast<float>(h >> 8) * (1.f / 16777216.f);
    const float v = (h & 1u) ? -mag * scale : mag * scale;
    if constexpr (sizeof(T) == 2) {
      p[i] = __float2bfloat16_rn(v);
    } else {
      p[i] = v;
    }
  }
}

template <typename T>
T* Alloc(size_t n, uint32_t seed, float scale = 1.f) {
  T* p = nullptr;
  BENCH_CUDA(cudaMalloc(&p, n * sizeof(T)));
  FillRandom<T><<<1024, 256>>>(p, n, seed, scale);
  BENCH_CUDA(cudaGetLastError());
  return p;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct Row {
  std::string name;
  std::string shape;
  double ms = 0;      // median per launch
  double ms_min = 0;  // fastest batch, per launch
  double bytes = 0;   // fewest bytes the operation must move
  std::string error;
};

// Times fn(i) (i = launch counter, used to rotate input sets): median over batches of
// per_batch launches each, after one warm-up batch.
Row Time(const std::string& name, const std::string& shape, double bytes, const Options& opt,
         const std::function<Status(int)>& fn) {
  Row row{name, shape, 0, 0, bytes, ""};
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  int launch = 0;
  std::vector<double> per_launch;
  for (int b = -1; b < opt.batches; ++b) {
    BENCH_CUDA(cudaEventRecord(start));
    for (int k = 0; k < opt.per_batch; ++k) {
      const Status st = fn(launch++);
      if (!st.ok()) {
        row.error = st.ToString();
        b = opt.batches;
        break;
      }
    }
    BENCH_CUDA(cudaEventRecord(stop));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    if (b >= 0 && row.error.empty()) per_launch.push_back(ms / opt.per_batch);
  }
  BENCH_CUDA(cudaGetLastError());
  if (!per_launch.empty()) {
    row.ms = Median(per_launch);
    row.ms_min = *std::min_element(per_launch.begin(), per_launch.end());
  }
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  return row;
}

Row CopyBandwidth(const Options& opt) {
  const size_t bytes = size_t{2} << 30;  // 2 GiB
  void* src = nullptr;
  void* dst = nullptr;
  BENCH_CUDA(cudaMalloc(&src, bytes));
  BENCH_CUDA(cudaMalloc(&dst, bytes));
  FillRandom<float><<<1024, 256>>>(static_cast<float*>(src), bytes / 4, 7u, 1.f);
  BENCH_CUDA(cudaGetLastError());
  Options copy_opt = opt;
  copy_opt.per_batch = 2;
  Row row = Time("copy (cudaMemcpy D2D, 2 GiB)", "-", 2.0 * bytes, copy_opt, [&](int) {
    return dyt::cuda::CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice),
                                 "cudaMemcpyAsync");
  });
  BENCH_CUDA(cudaFree(src));
  BENCH_CUDA(cudaFree(dst));
  return row;
}

// One input/output set per rotation slot.
struct Set {
  bf16* x = nullptr;      // bf16 residual stream / DyT input
  float* x32 = nullptr;   // fp32 residual stream
  bf16* d = nullptr;      // branch output
  bf16* y = nullptr;      // normalized output
  bf16* r_out = nullptr;  // updated bf16 residual
  float* r_out32 = nullptr;
  bf16* dy = nullptr;
  bf16* dr = nullptr;
  bf16* dx = nullptr;
  float* rstd = nullptr;
};

void BenchShape(int64_t N, int D, const Options& opt, size_t l2_bytes, std::vector<Row>& rows) {
  const size_t n = static_cast<size_t>(N) * D;
  const std::string shape = "(" + std::to_string(N) + ", " + std::to_string(D) + ")";
  // Enough sets that one rotation touches >= 3x L2 in the smallest kernel (4 bytes/elem).
  const int sets = static_cast<int>(
      std::clamp<size_t>((3 * l2_bytes + 4 * n - 1) / (4 * n), size_t{2}, size_t{8}));
  std::vector<Set> s(sets);
  uint32_t seed = 1;
  for (Set& set : s) {
    set.x = Alloc<bf16>(n, seed++, 2.f);
    set.x32 = Alloc<float>(n, seed++, 2.f);
    set.d = Alloc<bf16>(n, seed++);
    set.y = Alloc<bf16>(n, seed++);
    set.r_out = Alloc<bf16>(n, seed++);
    set.r_out32 = Alloc<float>(n, seed++);
    set.dy = Alloc<bf16>(n, seed++);
    set.dr = Alloc<bf16>(n, seed++);
    set.dx = Alloc<bf16>(n, seed++);
    set.rstd = Alloc<float>(N, seed++);
  }
  float* alpha = Alloc<float>(1, seed++);
  float* gamma = Alloc<float>(D, seed++);
  float* beta = Alloc<float>(D, seed++);
  float* dalpha = Alloc<float>(1, seed++);
  float* dgamma = Alloc<float>(D, seed++);
  float* dbeta = Alloc<float>(D, seed++);
  const size_t scratch_bytes = std::max(dyt::cuda::DytBackwardScratchBytes(N, D),
                                        dyt::cuda::RmsNormBackwardScratchBytes(N, D));
  void* scratch = nullptr;
  BENCH_CUDA(cudaMalloc(&scratch, scratch_bytes));
  BENCH_CUDA(cudaDeviceSynchronize());

  const double e = static_cast<double>(n);
  const double params = 3.0 * D * 4;  // gamma, beta / w, (their grads): small, counted once
  const float eps = 1e-5f;
  auto at = [&](int i) -> Set& { return s[i % sets]; };
  using namespace dyt::cuda;

  for (TanhMode mode : {TanhMode::kAccurate, TanhMode::kFast}) {
    const std::string tag = mode == TanhMode::kFast ? " [fast tanh]" : "";
    rows.push_back(Time("DyT fwd, bf16 in" + tag, shape, 4 * e + params, opt, [&](int i) {
      return DytForward(at(i).y, at(i).x, alpha, gamma, beta, N, D, nullptr, mode);
    }));
    rows.push_back(
        Time("res-add + DyT fwd, bf16 residual" + tag, shape, 8 * e + params, opt, [&](int i) {
          return ResidualDytForward(at(i).r_out, at(i).y, at(i).x, at(i).d, alpha, gamma, beta, N,
                                    D, nullptr, mode);
        }));
  }
  rows.push_back(Time("res-add + DyT fwd, fp32 residual", shape, 12 * e + params, opt, [&](int i) {
    return ResidualDytForward(at(i).r_out32, at(i).y, at(i).x32, at(i).d, alpha, gamma, beta, N, D,
                              nullptr, TanhMode::kAccurate);
  }));
  rows.push_back(Time("RMSNorm fwd, bf16 in", shape, 4 * e + 4.0 * N + params, opt, [&](int i) {
    return RmsNormForward(at(i).y, at(i).rstd, at(i).x, gamma, eps, N, D, nullptr);
  }));
  rows.push_back(Time("res-add + RMSNorm fwd, bf16 residual", shape, 8 * e + 4.0 * N + params, opt,
                      [&](int i) {
                        return ResidualRmsNormForward(at(i).r_out, at(i).y, at(i).rstd, at(i).x,
                                                      at(i).d, gamma, eps, N, D, nullptr);
                      }));
  for (TanhMode mode : {TanhMode::kAccurate, TanhMode::kFast}) {
    const std::string tag = mode == TanhMode::kFast ? " [fast tanh]" : "";
    rows.push_back(Time("DyT bwd (+dr), bf16" + tag, shape, 8 * e + params, opt, [&](int i) {
      return DytBackward(at(i).dx, dalpha, dgamma, dbeta, at(i).dy, at(i).x, at(i).dr, alpha, gamma,
                         N, D, scratch, scratch_bytes, nullptr, mode);
    }));
  }
  rows.push_back(Time("RMSNorm bwd (+dr), bf16", shape, 8 * e + 4.0 * N + params, opt, [&](int i) {
    return RmsNormBackward(at(i).dx, dgamma, at(i).dy, at(i).x, at(i).rstd, gamma, at(i).dr, N, D,
                           scratch, scratch_bytes, nullptr);
  }));
  BENCH_CUDA(cudaDeviceSynchronize());

  for (Set& set : s) {
    for (void* p :
         {static_cast<void*>(set.x), static_cast<void*>(set.x32), static_cast<void*>(set.d),
          static_cast<void*>(set.y), static_cast<void*>(set.r_out), static_cast<void*>(set.r_out32),
          static_cast<void*>(set.dy), static_cast<void*>(set.dr), static_cast<void*>(set.dx),
          static_cast<void*>(set.rstd)}) {
      BENCH_CUDA(cudaFree(p));
    }
  }
  for (void* p : {static_cast<void*>(alpha), static_cast<void*>(gamma), static_cast<void*>(beta),
                  static_cast<void*>(dalpha), static_cast<void*>(dgamma), static_cast<void*>(dbeta),
                  scratch}) {
    BENCH_CUDA(cudaFree(p));
  }
}

void PrintTable(const std::vector<Row>& rows, double copy_gbs, FILE* out) {
  std::fprintf(out, "%-42s %-14s %9s %9s %8s %7s\n", "kernel", "shape", "ms", "min ms", "GB/s",
               "%copy");
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      std::fprintf(out, "%-42s %-14s ERROR %s\n", r.name.c_str(), r.shape.c_str(), r.error.c_str());
      continue;
    }
    const double gbs = r.bytes / (r.ms * 1e-3) / 1e9;
    std::fprintf(out, "%-42s %-14s %9.4f %9.4f %8.0f %6.1f%%\n", r.name.c_str(), r.shape.c_str(),
                 r.ms, r.ms_min, gbs, 100.0 * gbs / copy_gbs);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--batches" && i + 1 < argc) {
      opt.batches = std::atoi(argv[++i]);
    } else if (a == "--per-batch" && i + 1 < argc) {
      opt.per_batch = std::atoi(argv[++i]);
    } else if (a == "--csv" && i + 1 < argc) {
      opt.csv = argv[++i];
    } else if (a == "--quick") {
      opt.batches = 5;
      opt.per_batch = 4;
    } else {
      std::fprintf(stderr, "usage: %s [--batches B] [--per-batch K] [--csv FILE] [--quick]\n",
                   argv[0]);
      return a == "--help" ? 0 : 1;
    }
  }
  if (opt.batches < 1 || opt.per_batch < 1) {
    std::fprintf(stderr, "--batches and --per-batch must be >= 1\n");
    return 1;
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "no CUDA GPU: nothing to benchmark\n");
    return 3;
  }
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  int mem_khz = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0));
  const double peak_gbs = 2.0 * mem_khz * 1e3 * (prop.memoryBusWidth / 8) / 1e9;
  std::printf("device: %s, %d SMs, L2 %.0f MB, memory %.1f GB, datasheet-ish peak %.0f GB/s\n",
              prop.name, prop.multiProcessorCount, prop.l2CacheSize / 1e6,
              prop.totalGlobalMem / 1e9, peak_gbs);
  std::printf("timing: median of %d batches x %d launches, CUDA events, warm-up batch first\n",
              opt.batches, opt.per_batch);

  std::vector<Row> rows;
  const Row copy = CopyBandwidth(opt);
  if (!copy.error.empty() || copy.ms <= 0) {
    std::fprintf(stderr, "copy benchmark failed: %s\n", copy.error.c_str());
    return 2;
  }
  const double copy_gbs = copy.bytes / (copy.ms * 1e-3) / 1e9;
  rows.push_back(copy);
  BenchShape(16384, 4096, opt, prop.l2CacheSize, rows);
  BenchShape(16 * 1024, 768, opt, prop.l2CacheSize, rows);

  std::printf("\n");
  PrintTable(rows, copy_gbs, stdout);
  bool failed = false;
  for (const Row& r : rows) failed |= !r.error.empty();
  if (!opt.csv.empty()) {
    FILE* f = std::fopen(opt.csv.c_str(), "w");
    if (f == nullptr) {
      std::perror(opt.csv.c_str());
      return 1;
    }
    std::fprintf(f, "kernel,shape,ms_median,ms_min,bytes,gb_per_s,pct_copy\n");
    for (const Row& r : rows) {
      const double gbs = r.ms > 0 ? r.bytes / (r.ms * 1e-3) / 1e9 : 0;
      std::fprintf(f, "\"%s\",\"%s\",%.6f,%.6f,%.0f,%.1f,%.2f\n", r.name.c_str(), r.shape.c_str(),
                   r.ms, r.ms_min, r.bytes, gbs, 100.0 * gbs / copy_gbs);
    }
    std::fclose(f);
  }
  return failed ? 1 : 0;
}
