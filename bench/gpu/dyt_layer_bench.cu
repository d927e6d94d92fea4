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
//        dyt-gpu-layer-bench --sweep [--csv FILE]   (every DyT kernel variant: dyt_sweep.cu)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/gpu/bench_util.cuh"
#include "bench/gpu/dyt_sweep.h"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/dyt_kernels.h"
#include "trainer/cuda/rmsnorm_kernels.h"

namespace {

using dyt::Status;
using dyt::cuda::bf16;
using dyt::cuda::TanhMode;

using dyt::bench::Alloc;
using dyt::bench::Median;

struct Options {
  int batches = 25;
  int per_batch = 10;
  std::string csv;
  bool sweep = false;
};

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
  const dyt::bench::Timing t = dyt::bench::TimeBatches(opt.batches, opt.per_batch, fn);
  row.error = t.error;
  if (!t.per_launch.empty() && t.error.empty()) {
    row.ms = Median(t.per_launch);
    row.ms_min = *std::min_element(t.per_launch.begin(), t.per_launch.end());
  }
  return row;
}

Row CopyBandwidth(const Options& opt) {
  Row row{"copy (cudaMemcpy D2D, 2 GiB)", "-", 0, 0, 2.0 * (size_t{2} << 30), ""};
  dyt::bench::CopyBandwidthGBs(opt.batches, &row.ms);
  row.ms_min = row.ms;
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
    } else if (a == "--sweep") {
      opt.sweep = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--batches B] [--per-batch K] [--csv FILE] [--quick] [--sweep]\n",
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

  if (opt.sweep) return dyt::bench::RunDytSweep(opt.csv);

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
