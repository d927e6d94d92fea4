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
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bench/gpu/bench_util.cuh"
#include "bench/gpu/dyt_sweep.h"
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

// dx_ref = dr + dy * gamma * alpha * (1 - tanh(alpha * x)^2) in fp64.
__global__ void BackwardReferenceKernel(float* dx_ref, const bf16* dy, const bf16* x,
                                        const bf16* dr, const float* alpha, const float* gamma,
                                        int64_t N, int D) {
  const size_t n = static_cast<size_t>(N) * D;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double a = *alpha;
    const double t = tanh(a * static_cast<double>(__bfloat162float(x[i])));
    dx_ref[i] = static_cast<float>(static_cast<double>(__bfloat162float(dr[i])) +
                                   static_cast<double>(__bfloat162float(dy[i])) * gamma[i % D] * a *
                                       (1 - t * t));
  }
}

struct Result {
  std::string op;  // "dyt", "res+dyt" or "bwd"
  int64_t N = 0;
  int D = 0;
  std::string name;  // the configuration
  bool accurate = true, is_default = false, is_legacy = false;
  std::string knobs;         // CSV: legacy,rows,min_blocks,tanh,hint,waves,block_x
  int regs = 0, blocks = 0;  // of the kernel, from the runtime (blocks of 256 threads per SM)
  double ms1 = 0, ms2 = 0;   // median ms per launch, pass 1 and pass 2
  double ms = 0;             // median over both passes' batches
  double bytes = 0;
  double err = 0;       // relative L2 error of y / dx against fp64
  double grad_err = 0;  // backward: max relative L2 difference of the parameter gradients
  unsigned long long nonfinite = 0, diff = 0, rdiff = 0;
  std::string error;
  std::vector<double> batches;

  bool Failed() const {
    return !error.empty() || nonfinite != 0 || rdiff != 0 || !(err <= 1e-2) ||
           (accurate && diff != 0) || !(grad_err <= (accurate ? 1e-4 : 1e-2));
  }
  double Pct(double copy_gbs) const {
    return ms > 0 ? 100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs : 0;
  }
};

struct Variant {
  Result r;
  std::function<Status(int set)> run;
};

std::string ShapeName(int64_t N, int D) {
  return "(" + std::to_string(N) + ", " + std::to_string(D) + ")";
}

// The launch-time knobs tried with each compiled-in forward configuration.
std::vector<DytForwardConfig> WithLaunchKnobs(const std::vector<DytForwardConfig>& compiled) {
  std::vector<DytForwardConfig> out;
  for (const DytForwardConfig& c : compiled) {
    if (c.legacy) {
      out.push_back(c);
      continue;
    }
    for (const auto& [waves, block_x] :
         {std::pair{1, 0}, std::pair{0, 0}, std::pair{2, 0}, std::pair{1, 32}}) {
      DytForwardConfig v = c;
      v.waves = waves;
      v.block_x = block_x;
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
  }
  return out;
}

CheckSums Compare(const bf16* y, const float* ref, const bf16* y_default, const bf16* r_out,
                  const bf16* r_ref, size_t n, CheckSums* sums_dev) {
  BENCH_CUDA(cudaMemset(sums_dev, 0, sizeof(CheckSums)));
  CompareKernel<<<1024, 256>>>(y, ref, y_default, r_out, r_ref, n, sums_dev);
  BENCH_CUDA(cudaGetLastError());
  CheckSums h{};
  BENCH_CUDA(cudaMemcpy(&h, sums_dev, sizeof(h), cudaMemcpyDeviceToHost));
  return h;
}

double RelL2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : (num == 0 ? 0 : INFINITY);
}

// Times every variant without an error: pass 1 in order, pass 2 reversed (slow drift then
// shows as a pass difference).
void TimeVariants(std::vector<Variant>& vs, int sets) {
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t k = 0; k < vs.size(); ++k) {
      Variant& v = vs[pass == 0 ? k : vs.size() - 1 - k];
      if (!v.r.error.empty()) continue;
      const Timing t = TimeBatches(kBatches, kPerBatch, [&](int i) { return v.run(i % sets); });
      if (!t.error.empty()) {
        v.r.error = t.error;
        continue;
      }
      (pass == 0 ? v.r.ms1 : v.r.ms2) = Median(t.per_launch);
      v.r.batches.insert(v.r.batches.end(), t.per_launch.begin(), t.per_launch.end());
    }
  }
  for (Variant& v : vs) v.r.ms = Median(v.r.batches);
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
  float* grads = Alloc<float>(2 * static_cast<size_t>(D) + 1, seed++);  // dgamma, dbeta, dalpha
  float* ref = nullptr;
  bf16* r_ref = nullptr;
  bf16* y_default = nullptr;
  CheckSums* sums = nullptr;
  BENCH_CUDA(cudaMalloc(&ref, n * sizeof(float)));
  BENCH_CUDA(cudaMalloc(&r_ref, n * sizeof(bf16)));
  BENCH_CUDA(cudaMalloc(&y_default, n * sizeof(bf16)));
  BENCH_CUDA(cudaMalloc(&sums, sizeof(CheckSums)));
  const size_t scratch_bytes = cuda::DytBackwardScratchBytes(N, D);
  void* scratch = nullptr;
  BENCH_CUDA(cudaMalloc(&scratch, scratch_bytes));
  BENCH_CUDA(cudaDeviceSynchronize());

  // ---- forward ----
  for (const bool residual : {false, true}) {
    const std::string op = residual ? "res+dyt" : "dyt";
    ReferenceKernel<<<1024, 256>>>(ref, r_ref, x[0], residual ? d[0] : nullptr, alpha, gamma, beta,
                                   N, D);
    BENCH_CUDA(cudaGetLastError());
    // The default's output, through the public entry point.
    const Status st = residual ? cuda::ResidualDytForward(r_out[0], y[0], x[0], d[0], alpha, gamma,
                                                          beta, N, D, nullptr, TanhMode::kAccurate)
                               : cuda::DytForward(y[0], x[0], alpha, gamma, beta, N, D, nullptr);
    if (!st.ok()) {
      std::fprintf(stderr, "default %s failed: %s\n", op.c_str(), st.ToString().c_str());
      std::exit(2);
    }
    BENCH_CUDA(cudaMemcpy(y_default, y[0], n * sizeof(bf16), cudaMemcpyDeviceToDevice));
    const DytForwardConfig def = cuda::tuning::DefaultDytForwardConfig(TanhMode::kAccurate);

    std::vector<Variant> vs;
    for (const DytForwardConfig& c : WithLaunchKnobs(cuda::tuning::DytForwardConfigs(residual))) {
      Variant v;
      Result& r = v.r;
      r.op = op;
      r.N = N;
      r.D = D;
      r.name = c.Name();
      r.accurate = c.tanh != TanhImpl::kHardware;
      r.is_default = c == def;
      r.is_legacy = c.legacy;
      r.knobs = std::to_string(c.legacy) + "," + std::to_string(c.rows) + "," +
                std::to_string(c.min_blocks) + "," + std::to_string(static_cast<int>(c.tanh)) +
                "," + std::to_string(static_cast<int>(c.hint)) + "," + std::to_string(c.waves) +
                "," + std::to_string(c.block_x);
      r.bytes = (residual ? 8.0 : 4.0) * static_cast<double>(n) + 3.0 * D * 4;
      cuda::tuning::DytForwardKernelInfo(c, residual, &r.regs, &r.blocks);
      v.run = [&, c, residual](int s) {
        return residual ? cuda::tuning::ResidualDytForwardTuned(c, r_out[s], y[s], x[s], d[s],
                                                                alpha, gamma, beta, N, D, nullptr)
                        : cuda::tuning::DytForwardTuned(c, y[s], x[s], alpha, gamma, beta, N, D,
                                                        nullptr);
      };
      // Check: poisoned outputs, one launch on set 0.
      BENCH_CUDA(cudaMemset(y[0], 0xFF, n * sizeof(bf16)));
      BENCH_CUDA(cudaMemset(r_out[0], 0xFF, n * sizeof(bf16)));
      const Status cst = v.run(0);
      BENCH_CUDA(cudaDeviceSynchronize());
      if (!cst.ok()) {
        r.error = cst.ToString();
      } else {
        const CheckSums h =
            Compare(y[0], ref, y_default, residual ? r_out[0] : nullptr, r_ref, n, sums);
        r.err = h.ref2 > 0 ? std::sqrt(h.err2 / h.ref2) : INFINITY;
        r.nonfinite = h.nonfinite;
        r.diff = h.diff;
        r.rdiff = h.rdiff;
      }
      vs.push_back(std::move(v));
    }
    TimeVariants(vs, sets);
    for (const Variant& v : vs) results.push_back(v.r);
  }

  // ---- backward (+dr): dy = d, x = x, dr = r_out (refilled), dx = y ----
  for (int s = 0; s < sets; ++s) {
    FillRandom<bf16><<<1024, 256>>>(r_out[s], n, 900u + s, 1.f);
    BENCH_CUDA(cudaGetLastError());
  }
  BackwardReferenceKernel<<<1024, 256>>>(ref, d[0], x[0], r_out[0], alpha, gamma, N, D);
  BENCH_CUDA(cudaGetLastError());
  // Runs cfg on set 0 (dx = y[0] poisoned) with zeroed gradients; returns its status and the
  // gradients (dgamma, dbeta, dalpha).
  auto grads_of = [&](const cuda::tuning::DytBackwardConfig& c) {
    BENCH_CUDA(cudaMemset(grads, 0, (2 * static_cast<size_t>(D) + 1) * sizeof(float)));
    BENCH_CUDA(cudaMemset(y[0], 0xFF, n * sizeof(bf16)));
    const Status st = cuda::tuning::DytBackwardTuned(c, y[0], grads + 2 * D, grads, grads + D, d[0],
                                                     x[0], r_out[0], alpha, gamma, N, D, scratch,
                                                     scratch_bytes, nullptr);
    BENCH_CUDA(cudaDeviceSynchronize());
    std::vector<float> g(2 * static_cast<size_t>(D) + 1);
    BENCH_CUDA(cudaMemcpy(g.data(), grads, g.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return std::pair<Status, std::vector<float>>(st, std::move(g));
  };
  const cuda::tuning::DytBackwardConfig bdef =
      cuda::tuning::DefaultDytBackwardConfig(TanhMode::kAccurate);
  const auto [dst, g_default] = grads_of(bdef);
  if (!dst.ok()) {
    std::fprintf(stderr, "default backward failed: %s\n", dst.ToString().c_str());
    std::exit(2);
  }
  BENCH_CUDA(cudaMemcpy(y_default, y[0], n * sizeof(bf16), cudaMemcpyDeviceToDevice));
  std::vector<Variant> vs;
  for (const cuda::tuning::DytBackwardConfig& c : cuda::tuning::DytBackwardConfigs()) {
    Variant v;
    Result& r = v.r;
    r.op = "bwd";
    r.N = N;
    r.D = D;
    r.name = "bwd." + c.Name();
    r.accurate = c.tanh != TanhImpl::kHardware;
    r.is_default = c == bdef;
    r.is_legacy = c.legacy;
    r.knobs = std::to_string(c.legacy) + "," + std::to_string(c.rows) + "," +
              std::to_string(c.min_blocks) + "," + std::to_string(static_cast<int>(c.tanh)) + ",,,";
    r.bytes = 8.0 * static_cast<double>(n) + 3.0 * D * 4;
    cuda::tuning::DytBackwardKernelInfo(c, &r.regs, &r.blocks);
    v.run = [&, c](int s) {
      return cuda::tuning::DytBackwardTuned(c, y[s], grads + 2 * D, grads, grads + D, d[s], x[s],
                                            r_out[s], alpha, gamma, N, D, scratch, scratch_bytes,
                                            nullptr);
    };
    const auto [cst, g] = grads_of(c);
    if (!cst.ok()) {
      r.error = cst.ToString();
    } else {
      const CheckSums h = Compare(y[0], ref, y_default, nullptr, nullptr, n, sums);
      r.err = h.ref2 > 0 ? std::sqrt(h.err2 / h.ref2) : INFINITY;
      r.nonfinite = h.nonfinite;
      r.diff = h.diff;
      auto part = [](const std::vector<float>& v, size_t from, size_t count) {
        return std::vector<float>(v.begin() + from, v.begin() + from + count);
      };
      const size_t dd = static_cast<size_t>(D);
      r.grad_err = std::max({RelL2(part(g, 0, dd), part(g_default, 0, dd)),
                             RelL2(part(g, dd, dd), part(g_default, dd, dd)),
                             RelL2(part(g, 2 * dd, 1), part(g_default, 2 * dd, 1))});
    }
    vs.push_back(std::move(v));
  }
  TimeVariants(vs, sets);
  for (const Variant& v : vs) results.push_back(v.r);

  for (int s = 0; s < sets; ++s) {
    for (bf16* p : {x[s], d[s], y[s], r_out[s]}) BENCH_CUDA(cudaFree(p));
  }
  for (void* p : {static_cast<void*>(alpha), static_cast<void*>(gamma), static_cast<void*>(beta),
                  static_cast<void*>(grads), static_cast<void*>(ref), static_cast<void*>(r_ref),
                  static_cast<void*>(y_default), static_cast<void*>(sums), scratch}) {
    BENCH_CUDA(cudaFree(p));
  }
}

void PrintRow(const std::string& tag, const Result& r, double copy_gbs) {
  if (!r.error.empty()) {
    std::printf("%-5s %-22s ERROR %s\n", tag.c_str(), r.name.c_str(), r.error.c_str());
    return;
  }
  std::printf("%-5s %-22s %4d %3d %8.4f %5.1f%% %5.1f%% %7.1e %6llu%s\n", tag.c_str(),
              r.name.c_str(), r.regs, r.blocks, r.ms, r.Pct(copy_gbs),
              r.ms > 0 ? 100.0 * std::fabs(r.ms1 - r.ms2) / r.ms : 0.0, r.err, r.diff,
              r.Failed() ? " FAIL" : "");
}

bool ByTime(const Result* a, const Result* b) {
  if (a->error.empty() != b->error.empty()) return a->error.empty();
  return a->ms < b->ms;
}

double GeoMean(const std::vector<double>& v) {
  double log_sum = 0;
  for (double p : v) log_sum += std::log(std::max(p, 1e-9));
  return v.empty() ? 0 : std::exp(log_sum / static_cast<double>(v.size()));
}

}  // namespace

int RunDytSweep(const std::string& csv) {
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double copy_gbs = CopyBandwidthGBs(kBatches);
  std::printf(
      "== DyT variant sweep: copy bandwidth %.0f GB/s; %d x %d launches per pass, 2 passes\n",
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
                   "blocks_per_sm,ms,ms_pass1,ms_pass2,pct_copy,rel_err,grad_err,nonfinite,"
                   "diff_default,rdiff,failed,error\n");
      for (const Result& r : results) {
        std::fprintf(f,
                     "%s,\"%s\",%s,%s,%d,%d,%.6f,%.6f,%.6f,%.2f,%.3e,%.3e,%llu,%llu,%llu,%d,"
                     "\"%s\"\n",
                     r.op.c_str(), ShapeName(r.N, r.D).c_str(), r.name.c_str(), r.knobs.c_str(),
                     r.regs, r.blocks, r.ms, r.ms1, r.ms2, r.Pct(copy_gbs), r.err, r.grad_err,
                     r.nonfinite, r.diff, r.rdiff, r.Failed(), r.error.c_str());
      }
      std::fclose(f);
    }
  }

  // Compact tables: per (kernel, shape), the 5 fastest accurate variants, the default, the
  // legacy kernels, the fastest hardware-tanh variant, and any that failed.
  std::printf(
      "\nconfig = r<rows>.b<min blocks>.<tanh lib|exp|hw>[.<hint cs|nc|na|st>.w<waves, 0 = "
      "all tiles>.x<block_x, 0 = auto>]; D = default, L = legacy\n"
      "regs/blk = registers, blocks of 256 per SM; spread = |pass1 - pass2| / ms; diff = "
      "output bits differing from the default's (0 for accurate)\n");
  int failed = 0;
  std::vector<double> spreads;
  std::map<std::string, std::vector<double>> fwd_pct;  // accurate forward configs, 4 groups
  const std::string def_name = cuda::tuning::DefaultDytForwardConfig(TanhMode::kAccurate).Name();
  for (const std::string op : {"dyt", "res+dyt", "bwd"}) {
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
        if (op != "bwd" && r->accurate && r->error.empty()) {
          fwd_pct[r->name].push_back(r->Pct(copy_gbs));
        }
      }
      spreads.insert(spreads.end(), sp.begin(), sp.end());
      const char* title =
          op == "dyt" ? "DyT fwd" : (op == "bwd" ? "DyT bwd (+dr)" : "res-add + DyT fwd");
      std::printf("\n-- %s %s, bf16: %zu variants, spread median %.1f%%\n", title,
                  ShapeName(16384, D).c_str(), group.size(), 100.0 * Median(sp));
      std::printf("%-5s %-22s %4s %3s %8s %6s %6s %7s %6s\n", "rank", "config", "regs", "blk", "ms",
                  "%copy", "spread", "rel err", "diff");
      int shown_acc = 0, shown_hw = 0;
      for (size_t i = 0; i < group.size(); ++i) {
        const Result& r = *group[i];
        bool show = r.is_default || r.is_legacy || r.Failed();
        if (r.accurate && shown_acc < 5) show = true;
        if (!r.accurate && shown_hw < 1) show = true;
        if (!show) continue;
        if (!r.is_legacy) (r.accurate ? shown_acc : shown_hw)++;
        PrintRow(std::string(r.is_default ? "D" : (r.is_legacy ? "L" : "")) + std::to_string(i + 1),
                 r, copy_gbs);
      }
    }
  }
  // The accurate forward configuration best over all four forward groups.
  std::string best;
  double best_score = 0;
  for (const auto& [name, pcts] : fwd_pct) {
    if (pcts.size() == 4 && GeoMean(pcts) > best_score) {
      best_score = GeoMean(pcts);
      best = name;
    }
  }
  auto score_of = [&](const std::string& name) {
    const auto it = fwd_pct.find(name);
    return it != fwd_pct.end() && it->second.size() == 4 ? GeoMean(it->second) : 0.0;
  };
  std::printf(
      "\nfwd, best accurate config over all 4 (geomean %%copy): %s %.1f%%; default %s "
      "%.1f%%; legacy %.1f%%\nspread median %.1f%%; failed variants: %d\n",
      best.c_str(), best_score, def_name.c_str(), score_of(def_name), score_of("legacy.lib"),
      100.0 * Median(spreads), failed);
  return failed > 0 ? 1 : 0;
}

}  // namespace dyt::bench
