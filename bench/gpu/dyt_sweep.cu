// dyt-gpu-layer-bench --sweep: every compiled-in variant of the fused DyT kernels, checked and
// timed in one run, so the next defaults can be picked from one device call.
//
// For each shape ((16384, 4096), (16384, 768)): the forward kernels (DyT fwd; residual add +
// DyT fwd, bf16 residual), every configuration of tuning::DytForwardConfigs with several
// launch-time knobs (grid: persistent x1 / x2 / a block per tile; block_x auto or 32); and the
// backward (+dr, bf16), every configuration of tuning::DytBackwardConfigs. Each variant is
// first CHECKED on poisoned outputs against an fp64 reference (relative L2 error, unwritten
// elements, bits that differ from the default's output: none for accurate variants; the
// residual output must be exact; the backward's parameter gradients within 1e-4 of the
// default's), then TIMED in two passes (list order, then reversed; median of batches of
// launches rotating over input sets larger than L2). The spread between the passes is the
// noise floor: differences below it are not real.
//
// Output: one compact table per (kernel, shape), best first, then the forward configuration
// best over all four forward tables (what the default could become). The CSV has every row.
#include "bench/gpu/dyt_sweep.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench/gpu/bench_util.cuh"
#include "trainer/cuda/dyt_kernels.h"

namespace dyt::bench {
namespace {

using cuda::bf16;
using cuda::TanhMode;
using cuda::tuning::CacheHint;
using cuda::tuning::DytForwardConfig;
using cuda::tuning::TanhImpl;

constexpr int kBatches = 10;
constexpr int kPerBatch = 10;

// y_ref = gamma * tanh(alpha * x) + beta in fp64, x the bf16 input or, with d, the residual sum
// rounded to bf16 (which r_ref receives).
__global__ void ReferenceKernel(float* y_ref, bf16* r_ref, const bf16* x, const bf16* d,
                                const float* alpha, const float* gamma, const float* beta,
                                int64_t N, int D) {
  const size_t n = static_cast<size_t>(N) * D;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float xv = __bfloat162float(x[i]);
    if (d != nullptr) {
      const bf16 r = __float2bfloat16_rn(xv + __bfloat162float(d[i]));
      r_ref[i] = r;
      xv = __bfloat162float(r);
    }
    const int c = static_cast<int>(i % D);
    y_ref[i] = static_cast<float>(static_cast<double>(gamma[c]) *
                                      tanh(static_cast<double>(*alpha) * static_cast<double>(xv)) +
                                  static_cast<double>(beta[c]));
  }
}

struct CheckSums {
  double err2;                   // sum (y - y_ref)^2 over finite y
  double ref2;                   // sum y_ref^2
  unsigned long long nonfinite;  // y elements that are NaN/Inf (the poison: never written)
  unsigned long long diff;       // y elements whose bits differ from the default's output
  unsigned long long rdiff;      // r_out elements whose bits differ from r_ref (residual)
};

__global__ void CompareKernel(const bf16* y, const float* y_ref, const bf16* y_default,
                              const bf16* r_out, const bf16* r_ref, size_t n, CheckSums* out) {
  double err2 = 0, ref2 = 0;
  unsigned long long nonfinite = 0, diff = 0, rdiff = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float v = __bfloat162float(y[i]);
    const double ref = y_ref[i];
    if (isfinite(v)) {
      err2 += (v - ref) * (v - ref);
    } else {
      ++nonfinite;
    }
    ref2 += ref * ref;
    diff += __bfloat16_as_ushort(y[i]) != __bfloat16_as_ushort(y_default[i]);
    if (r_out != nullptr) rdiff += __bfloat16_as_ushort(r_out[i]) != __bfloat16_as_ushort(r_ref[i]);
  }
  for (int o = 16; o > 0; o >>= 1) {
    err2 += __shfl_xor_sync(0xffffffffu, err2, o);
    ref2 += __shfl_xor_sync(0xffffffffu, ref2, o);
    nonfinite += __shfl_xor_sync(0xffffffffu, nonfinite, o);
    diff += __shfl_xor_sync(0xffffffffu, diff, o);
    rdiff += __shfl_xor_sync(0xffffffffu, rdiff, o);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicAdd(&out->err2, err2);
    atomicAdd(&out->ref2, ref2);
    atomicAdd(&out->nonfinite, nonfinite);
    atomicAdd(&out->diff, diff);
    atomicAdd(&out->rdiff, rdiff);
  }
}

struct Result {
  std::string op;  // "dyt" or "res+dyt"
  int64_t N = 0;
  int D = 0;
  DytForwardConfig cfg;
  int regs = 0, blocks = 0;  // of the kernel, from the runtime (blocks of 256 threads per SM)
  double ms1 = 0, ms2 = 0;   // median ms per launch, pass 1 and pass 2
  double ms = 0;             // median over both passes' batches
  double bytes = 0;
  double err = 0;
  unsigned long long nonfinite = 0, diff = 0, rdiff = 0;
  std::string error;
  std::vector<double> batches;

  bool Accurate() const { return cfg.tanh != TanhImpl::kHardware; }
  bool Failed() const {
    return !error.empty() || nonfinite != 0 || rdiff != 0 || !(err <= 1e-2) ||
           (Accurate() && diff != 0);
  }
  double Pct(double copy_gbs) const { return ms > 0 ? 100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs : 0; }
};

std::string ShapeName(int64_t N, int D) {
  return "(" + std::to_string(N) + ", " + std::to_string(D) + ")";
}

// The launch-time knobs tried with each compiled-in configuration.
std::vector<DytForwardConfig> WithLaunchKnobs(const std::vector<DytForwardConfig>& compiled) {
  std::vector<DytForwardConfig> out;
  for (const DytForwardConfig& c : compiled) {
    if (c.legacy) {
      out.push_back(c);
      continue;
    }
    for (const auto& [waves, block_x] : {std::pair{1, 0}, std::pair{0, 0}, std::pair{2, 0},
                                         std::pair{1, 32}}) {
      DytForwardConfig v = c;
      v.waves = waves;
      v.block_x = block_x;
      out.push_back(v);
    }
  }
  return out;
}

void SweepShape(int64_t N, int D, size_t l2_bytes, std::vector<Result>& results) {
  const size_t n = static_cast<size_t>(N) * D;
  // Enough input sets that one rotation touches >= 3x L2 in the plain kernel (4 bytes/elem).
  const int sets = static_cast<int>(
      std::clamp<size_t>((3 * l2_bytes + 4 * n - 1) / (4 * n), size_t{2}, size_t{8}));
  std::vector<bf16*> x(sets), d(sets), y(sets), r_out(sets);
  uint32_t seed = 101;
  for (int s = 0; s < sets; ++s) {
    x[s] = Alloc<bf16>(n, seed++, 2.f);
    d[s] = Alloc<bf16>(n, seed++);
    y[s] = Alloc<bf16>(n, seed++);
    r_out[s] = Alloc<bf16>(n, seed++);
  }
  float* alpha = Alloc<float>(1, seed++);
  float* gamma = Alloc<float>(D, seed++);
  float* beta = Alloc<float>(D, seed++);
  float* y_ref = nullptr;
  bf16* r_ref = nullptr;
  bf16* y_default = nullptr;
  CheckSums* sums = nullptr;
  BENCH_CUDA(cudaMalloc(&y_ref, n * sizeof(float)));
  BENCH_CUDA(cudaMalloc(&r_ref, n * sizeof(bf16)));
  BENCH_CUDA(cudaMalloc(&y_default, n * sizeof(bf16)));
  BENCH_CUDA(cudaMalloc(&sums, sizeof(CheckSums)));
  BENCH_CUDA(cudaDeviceSynchronize());

  for (const bool residual : {false, true}) {
    const std::string op = residual ? "res+dyt" : "dyt";
    auto run = [&](const DytForwardConfig& c, int s) {
      return residual ? cuda::tuning::ResidualDytForwardTuned(c, r_out[s], y[s], x[s], d[s], alpha,
                                                              gamma, beta, N, D, nullptr)
                      : cuda::tuning::DytForwardTuned(c, y[s], x[s], alpha, gamma, beta, N, D,
                                                      nullptr);
    };
    ReferenceKernel<<<1024, 256>>>(y_ref, r_ref, x[0], residual ? d[0] : nullptr, alpha, gamma,
                                   beta, N, D);
    BENCH_CUDA(cudaGetLastError());
    // The default's output, through the public entry point.
    const Status st =
        residual ? cuda::ResidualDytForward(r_out[0], y[0], x[0], d[0], alpha, gamma, beta, N, D,
                                            nullptr, TanhMode::kAccurate)
                 : cuda::DytForward(y[0], x[0], alpha, gamma, beta, N, D, nullptr);
    if (!st.ok()) {
      std::fprintf(stderr, "default %s failed: %s\n", op.c_str(), st.ToString().c_str());
      std::exit(2);
    }
    BENCH_CUDA(cudaMemcpy(y_default, y[0], n * sizeof(bf16), cudaMemcpyDeviceToDevice));

    const size_t first = results.size();
    for (const DytForwardConfig& c : WithLaunchKnobs(cuda::tuning::DytForwardConfigs(residual))) {
      Result r;
      r.op = op;
      r.N = N;
      r.D = D;
      r.cfg = c;
      r.bytes = (residual ? 8.0 : 4.0) * static_cast<double>(n) + 3.0 * D * 4;
      cuda::tuning::DytForwardKernelInfo(c, residual, &r.regs, &r.blocks);
      // Check: poisoned outputs, one launch on set 0.
      BENCH_CUDA(cudaMemset(y[0], 0xFF, n * sizeof(bf16)));
      BENCH_CUDA(cudaMemset(r_out[0], 0xFF, n * sizeof(bf16)));
      const Status cst = run(c, 0);
      BENCH_CUDA(cudaDeviceSynchronize());
      if (!cst.ok()) {
        r.error = cst.ToString();
        results.push_back(r);
        continue;
      }
      BENCH_CUDA(cudaMemset(sums, 0, sizeof(CheckSums)));
      CompareKernel<<<1024, 256>>>(y[0], y_ref, y_default, residual ? r_out[0] : nullptr, r_ref, n,
                                   sums);
      BENCH_CUDA(cudaGetLastError());
      CheckSums h{};
      BENCH_CUDA(cudaMemcpy(&h, sums, sizeof(h), cudaMemcpyDeviceToHost));
      r.err = h.ref2 > 0 ? std::sqrt(h.err2 / h.ref2) : INFINITY;
      r.nonfinite = h.nonfinite;
      r.diff = h.diff;
      r.rdiff = h.rdiff;
      results.push_back(r);
    }
    // Time: pass 1 in list order, pass 2 reversed, so slow drift shows as a pass difference.
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t k = 0; k < results.size() - first; ++k) {
        Result& r = results[pass == 0 ? first + k : results.size() - 1 - k];
        if (!r.error.empty()) continue;
        const Timing t = TimeBatches(kBatches, kPerBatch, [&](int i) { return run(r.cfg, i % sets); });
        if (!t.error.empty()) {
          r.error = t.error;
          continue;
        }
        (pass == 0 ? r.ms1 : r.ms2) = Median(t.per_launch);
        r.batches.insert(r.batches.end(), t.per_launch.begin(), t.per_launch.end());
      }
    }
    for (size_t k = first; k < results.size(); ++k) results[k].ms = Median(results[k].batches);
  }

  for (int s = 0; s < sets; ++s) {
    for (bf16* p : {x[s], d[s], y[s], r_out[s]}) BENCH_CUDA(cudaFree(p));
  }
  for (void* p : {static_cast<void*>(alpha), static_cast<void*>(gamma), static_cast<void*>(beta),
                  static_cast<void*>(y_ref), static_cast<void*>(r_ref),
                  static_cast<void*>(y_default), static_cast<void*>(sums)}) {
    BENCH_CUDA(cudaFree(p));
  }
}

void PrintRow(const char* tag, const Result& r, double copy_gbs) {
  if (!r.error.empty()) {
    std::printf("%-8s %-22s ERROR %s\n", tag, r.cfg.Name().c_str(), r.error.c_str());
    return;
  }
  std::printf("%-8s %-22s %4d %3d %8.4f %6.1f%% %5.1f%% %8.1e %9llu%s\n", tag,
              r.cfg.Name().c_str(), r.regs, r.blocks, r.ms, r.Pct(copy_gbs),
              r.ms > 0 ? 100.0 * std::fabs(r.ms1 - r.ms2) / r.ms : 0.0, r.err, r.diff,
              r.Failed() ? "  FAIL" : "");
}

bool ByTime(const Result* a, const Result* b) {
  if (a->error.empty() != b->error.empty()) return a->error.empty();
  return a->ms < b->ms;
}

}  // namespace

int RunDytForwardSweep(const std::string& csv) {
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double copy_gbs = CopyBandwidthGBs(kBatches);
  std::printf("== DyT forward variant sweep: copy bandwidth %.0f GB/s; %d x %d launches per pass, "
              "2 passes\n",
              copy_gbs, kBatches, kPerBatch);
  std::vector<Result> results;
  for (const auto& [N, D] : {std::pair<int64_t, int>{16384, 4096}, {16384, 768}}) {
    SweepShape(N, D, prop.l2CacheSize, results);
  }

  if (!csv.empty()) {
    FILE* f = std::fopen(csv.c_str(), "w");
    if (f == nullptr) {
      std::perror(csv.c_str());
    } else {
      std::fprintf(f,
                   "op,shape,config,legacy,rows,min_blocks,tanh,hint,waves,block_x,regs,"
                   "blocks_per_sm,ms,ms_pass1,ms_pass2,pct_copy,rel_err,nonfinite,diff_default,"
                   "rdiff,failed,error\n");
      for (const Result& r : results) {
        std::fprintf(f, "%s,\"%s\",%s,%d,%d,%d,%d,%d,%d,%d,%d,%d,%.6f,%.6f,%.6f,%.2f,%.3e,%llu,%llu,%llu,%d,\"%s\"\n",
                     r.op.c_str(), ShapeName(r.N, r.D).c_str(), r.cfg.Name().c_str(),
                     r.cfg.legacy, r.cfg.rows, r.cfg.min_blocks, static_cast<int>(r.cfg.tanh),
                     static_cast<int>(r.cfg.hint), r.cfg.waves, r.cfg.block_x, r.regs, r.blocks,
                     r.ms, r.ms1, r.ms2, r.Pct(copy_gbs), r.err, r.nonfinite, r.diff, r.rdiff,
                     r.Failed(), r.error.c_str());
      }
      std::fclose(f);
    }
  }

  // Compact tables: per (kernel, shape), the 6 fastest accurate variants, the default, the
  // legacy kernels, the fastest hardware-tanh variant, and any that failed.
  std::printf("\nconfig = r<rows>.b<min blocks>.<tanh lib|exp|hw>.<hint cs|nc|na|st>.w<waves, 0 = "
              "all tiles>.x<block_x, 0 = auto>; D = default, L = legacy\n"
              "regs/blk = registers, blocks of 256 per SM; spread = |pass1 - pass2| / ms; diff = y "
              "bits differing from the default's (0 for accurate)\n");
  int failed = 0;
  std::vector<double> spreads;
  std::map<std::string, std::vector<double>> pct_by_config;  // accurate, all four groups
  const DytForwardConfig def = cuda::tuning::DefaultDytForwardConfig(TanhMode::kAccurate);
  for (const std::string op : {"dyt", "res+dyt"}) {
    for (const int D : {4096, 768}) {
      std::vector<const Result*> group;
      for (const Result& r : results) {
        if (r.op == op && r.D == D) group.push_back(&r);
      }
      if (group.empty()) continue;
      std::sort(group.begin(), group.end(), ByTime);
      std::vector<double> sp;
      for (const Result* r : group) {
        failed += r->Failed();
        if (r->ms > 0) sp.push_back(std::fabs(r->ms1 - r->ms2) / r->ms);
        if (r->Accurate() && r->error.empty()) {
          pct_by_config[r->cfg.Name()].push_back(r->Pct(copy_gbs));
        }
      }
      spreads.insert(spreads.end(), sp.begin(), sp.end());
      std::printf("\n-- %s %s, bf16: %zu variants, timing spread median %.1f%%\n",
                  op == "dyt" ? "DyT fwd" : "res-add + DyT fwd", ShapeName(16384, D).c_str(),
                  group.size(), 100.0 * Median(sp));
      std::printf("%-8s %-22s %4s %3s %8s %7s %6s %8s %9s\n", "rank", "config", "regs", "blk",
                  "ms", "%copy", "spread", "rel err", "diff");
      int shown_acc = 0, shown_hw = 0;
      for (size_t i = 0; i < group.size(); ++i) {
        const Result& r = *group[i];
        const bool is_default = r.cfg == def;
        const bool is_legacy = r.cfg.legacy;
        bool show = is_default || is_legacy || r.Failed();
        if (r.Accurate() && shown_acc < 6) show = true;
        if (!r.Accurate() && shown_hw < 1) show = true;
        if (!show) continue;
        if (!is_legacy) (r.Accurate() ? shown_acc : shown_hw)++;
        const std::string tag =
            std::string(is_default ? "D " : (is_legacy ? "L " : "")) + std::to_string(i + 1);
        PrintRow(tag.c_str(), r, copy_gbs);
      }
    }
  }
  // The accurate configuration best over all four groups (geometric mean of %copy).
  std::string best;
  double best_score = 0;
  for (const auto& [name, pcts] : pct_by_config) {
    if (pcts.size() != 4) continue;
    double log_sum = 0;
    for (double p : pcts) log_sum += std::log(std::max(p, 1e-9));
    const double score = std::exp(log_sum / 4);
    if (score > best_score) {
      best_score = score;
      best = name;
    }
  }
  auto score_of = [&](const std::string& name) {
    auto it = pct_by_config.find(name);
    if (it == pct_by_config.end() || it->second.size() != 4) return 0.0;
    double log_sum = 0;
    for (double p : it->second) log_sum += std::log(std::max(p, 1e-9));
    return std::exp(log_sum / 4);
  };
  std::printf("\nbest accurate config over all 4 (geomean %%copy): %s %.1f%%; default %s %.1f%%; "
              "timing spread median %.1f%%; failed variants: %d\n",
              best.c_str(), best_score, def.Name().c_str(), score_of(def.Name()),
              100.0 * Median(spreads), failed);
  return failed > 0 ? 1 : 0;
}

}  // namespace dyt::bench
