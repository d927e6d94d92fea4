// The AdamW update kernel against (1) an exact host model of its operation order (every
// product and sum rounded separately: the kernel must match it bit for bit) and (2) its CPU
// twin dyt::AdamW::Step over the "test" preset's parameter layout, several steps, weight decay
// on and off, grad_scale != 1, per-tensor ranges (misaligned: the scalar path), one range
// over the whole buffer (the vector path), and one range with the decay by run (AdamWDecayRuns:
// what the CUDA backend launches once per step), also against the exact model on random run
// tables (empty runs, boundaries inside a 4-element vector, misaligned).
//
// (2) should match bit for bit too: trainer/CMakeLists.txt compiles adamw.cc with
// -ffp-contract=off, so the CPU rounds every product and sum like the kernel. The bound kept,
// |gpu - cpu| <= 1e-6 * max(|cpu|, rms of the array), is a margin for a host compiler that
// contracts anyway (an ulp of an intermediate term can be many ulps of m where
// m * beta1 + g * (1 - beta1) nearly cancels); a wrong formula (bias correction, decay, order
// of the steps) fails it. The ulps printed per step show how exact the match is.
#include "trainer/cuda/adamw_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/model/config.h"
#include "trainer/model/param_layout.h"
#include "trainer/optim/adamw.h"

namespace dyt::cuda {
namespace {

using test::DevArray;

int64_t UlpDiff(float a, float b) {
  if (a == b) return 0;
  if (std::isnan(a) || std::isnan(b)) return INT64_MAX;
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  // Map the sign-magnitude bits to a monotonic integer line.
  const int64_t la = ia < 0 ? -int64_t(ia & 0x7fffffff) : int64_t(ia);
  const int64_t lb = ib < 0 ? -int64_t(ib & 0x7fffffff) : int64_t(ib);
  return la > lb ? la - lb : lb - la;
}

// One element as the kernel computes it; `volatile` forces the rounding of every operation
// (no FMA contraction by the host compiler).
void ReferenceElement(float& p, float& m, float& v, float grad, const AdamWScalars& s) {
  volatile float omb1 = 1.0f - s.beta1;
  volatile float omb2 = 1.0f - s.beta2;
  volatile float g = grad * s.grad_scale;
  volatile float pd = p * s.decay;
  volatile float m1 = m * s.beta1;
  volatile float m2 = g * omb1;
  volatile float mn = m1 + m2;
  volatile float v1 = v * s.beta2;
  volatile float v2 = omb2 * g;
  volatile float v3 = v2 * g;
  volatile float vn = v1 + v3;
  volatile float sq = std::sqrt(static_cast<float>(vn));
  volatile float q = sq / s.bc2_sqrt;
  volatile float denom = q + s.eps;
  volatile float r = mn / denom;
  volatile float upd = -s.step_size * r;
  p = pd + upd;
  m = mn;
  v = vn;
}

// A run table on the device (bounds [count + 1], decays [count]).
struct DevRuns {
  DevRuns(const std::vector<int64_t>& bounds, const std::vector<uint8_t>& decays)
      : b(bounds), d(decays) {
    runs.bounds = b.get();
    runs.decays = d.get();
    runs.count = static_cast<int>(decays.size());
  }
  test::DevVector<int64_t> b;
  test::DevVector<uint8_t> d;
  AdamWDecayRuns runs;
};

struct Worst {
  int64_t ulps = 0;
  int64_t index = -1;
  int64_t count_diff = 0;
};

Worst CompareUlps(const std::vector<float>& got, const std::vector<float>& want) {
  Worst w;
  for (size_t i = 0; i < want.size(); ++i) {
    const int64_t u = UlpDiff(got[i], want[i]);
    if (u > 0) ++w.count_diff;
    if (u > w.ulps) {
      w.ulps = u;
      w.index = static_cast<int64_t>(i);
    }
  }
  return w;
}

TEST(AdamWKernelTest, MatchesExactHostModelBitForBit) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{4096}, int64_t{100003}}) {
    for (const size_t misalign : {size_t{0}, size_t{1}}) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " misalign=" << misalign << " seed=" << seed);
      std::mt19937_64 rng(seed + static_cast<uint64_t>(n) + misalign);
      std::vector<float> p = test::RandomNonZero(rng, n, 1e-3f, 1.f);
      std::vector<float> m(n, 0.f), v(n, 0.f);
      DevArray<float> p_dev(p, misalign), m_dev(m, misalign), v_dev(v, misalign);
      DevArray<bf16> pb_dev(n, misalign);
      for (int64_t t = 1; t <= 4; ++t) {
        const std::vector<float> g = test::RandomNonZero(rng, n, 1e-6f, 2.f);
        const float lr = 1e-3f * static_cast<float>(t);
        const float gs = t % 2 == 0 ? 0.37f : 1.0f;
        const AdamWScalars s = AdamWStepScalars(lr, 0.9f, 0.95f, 1e-8f, 0.1f, t != 3, t, gs);
        for (int64_t i = 0; i < n; ++i) ReferenceElement(p[i], m[i], v[i], g[i], s);
        DevArray<float> g_dev(g, misalign);
        pb_dev.Poison();
        DYT_ASSERT_OK(AdamWUpdate(p_dev.get(), pb_dev.get(), g_dev.get(), m_dev.get(), v_dev.get(),
                                  n, s, nullptr));
        DYT_TEST_CUDA(cudaDeviceSynchronize());
        const std::vector<float> p_gpu = p_dev.Download();
        const Worst wp = CompareUlps(p_gpu, p), wm = CompareUlps(m_dev.Download(), m),
                    wv = CompareUlps(v_dev.Download(), v);
        EXPECT_EQ(wp.ulps, 0) << "step " << t << ": params differ in " << wp.count_diff
                              << " elements, worst " << wp.ulps << " ulps at " << wp.index;
        EXPECT_EQ(wm.ulps, 0) << "step " << t << ": m differs in " << wm.count_diff
                              << " elements, worst " << wm.ulps << " ulps at " << wm.index;
        EXPECT_EQ(wv.ulps, 0) << "step " << t << ": v differs in " << wv.count_diff
                              << " elements, worst " << wv.ulps << " ulps at " << wv.index;
        const std::vector<float> pb = pb_dev.Download();
        int64_t bad_bf16 = 0;
        for (int64_t i = 0; i < n; ++i) bad_bf16 += pb[i] != test::RoundToBf16(p_gpu[i]);
        EXPECT_EQ(bad_bf16, 0) << "step " << t << ": params_bf16 != bf16(params)";
      }
    }
  }
}

// Random run tables over n elements: bounds anywhere (inside 4-element vectors too), some runs
// empty, random decays; the kernel must apply each element's own run's decay.
TEST(AdamWKernelTest, DecayRunsMatchExactHostModelBitForBit) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  for (const int64_t n : {int64_t{7}, int64_t{4099}, int64_t{100003}}) {
    for (const size_t misalign : {size_t{0}, size_t{1}}) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " misalign=" << misalign << " seed=" << seed);
      std::mt19937_64 rng(seed + static_cast<uint64_t>(n) * 3 + misalign);
      const int count = std::uniform_int_distribution<int>(1, 40)(rng);
      std::vector<int64_t> bounds(static_cast<size_t>(count) + 1);
      for (int64_t& b : bounds) b = std::uniform_int_distribution<int64_t>(0, n)(rng);
      std::sort(bounds.begin(), bounds.end());
      bounds.front() = 0;
      bounds.back() = n;
      std::vector<uint8_t> decays(static_cast<size_t>(count));
      for (uint8_t& d : decays) d = static_cast<uint8_t>(rng() % 2);
      const DevRuns runs(bounds, decays);

      std::vector<float> p = test::RandomNonZero(rng, n, 1e-3f, 1.f);
      std::vector<float> m(n, 0.f), v(n, 0.f);
      DevArray<float> p_dev(p, misalign), m_dev(m, misalign), v_dev(v, misalign);
      DevArray<bf16> pb_dev(n, misalign);
      for (int64_t t = 1; t <= 3; ++t) {
        const std::vector<float> g = test::RandomNonZero(rng, n, 1e-6f, 2.f);
        const AdamWScalars s = AdamWStepScalars(1e-2f * static_cast<float>(t), 0.9f, 0.95f, 1e-8f,
                                                0.1f, true, t, 0.7f);
        AdamWScalars no_decay = s;
        no_decay.decay = 1.0f;
        for (int r = 0; r < count; ++r) {
          for (int64_t i = bounds[r]; i < bounds[r + 1]; ++i) {
            ReferenceElement(p[i], m[i], v[i], g[i], decays[r] != 0 ? s : no_decay);
          }
        }
        DevArray<float> g_dev(g, misalign);
        DYT_ASSERT_OK(AdamWUpdate(p_dev.get(), pb_dev.get(), g_dev.get(), m_dev.get(), v_dev.get(),
                                  n, s, nullptr, &runs.runs));
        DYT_TEST_CUDA(cudaDeviceSynchronize());
        const Worst wp = CompareUlps(p_dev.Download(), p), wm = CompareUlps(m_dev.Download(), m),
                    wv = CompareUlps(v_dev.Download(), v);
        EXPECT_EQ(wp.ulps, 0) << "step " << t << ": params differ in " << wp.count_diff
                              << " elements, first worst at " << wp.index;
        EXPECT_EQ(wm.ulps, 0) << "step " << t << ": m differs at " << wm.index;
        EXPECT_EQ(wv.ulps, 0) << "step " << t << ": v differs at " << wv.index;
      }
    }
  }
}

// The elements of the layout's buffer that belong to no tensor (the alignment padding between
// tensors): the backends keep their parameters and gradients at 0, and AdamW::Step skips them.
std::vector<bool> PaddingMask(const ParamLayout& layout) {
  std::vector<bool> padding(static_cast<size_t>(layout.total()), true);
  for (const ParamTensor& pt : layout.tensors()) {
    for (int64_t i = pt.offset; i < pt.offset + pt.numel; ++i) padding[i] = false;
  }
  return padding;
}

// How CheckAgainstTwin calls the kernel: once per tensor; once over the whole buffer (every
// tensor decays alike); once over the whole buffer with the decay by run.
enum class Launches { kPerTensor, kWholeBuffer, kDecayRuns };

// Runs `steps` AdamW steps on the CPU twin and on the GPU and compares p, m, v.
void CheckAgainstTwin(bool no_decay_norms, Launches launches, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "no_decay_norms_and_scales=" << no_decay_norms << " launches="
                                  << static_cast<int>(launches) << " seed=" << seed);
  const bool whole_buffer = launches != Launches::kPerTensor;
  StatusOr<ModelConfig> config = ModelPreset("test");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const ParamLayout layout(*config);
  const int64_t n = layout.total();
  AdamWConfig acfg;
  acfg.no_decay_norms_and_scales = no_decay_norms;
  AdamW opt(layout, acfg);

  std::mt19937_64 rng(seed);
  const std::vector<bool> padding = PaddingMask(layout);
  // The backend's table: consecutive tensors that decay alike form one run (padding included).
  std::vector<int64_t> bounds;
  std::vector<uint8_t> decays;
  for (size_t ti = 0; ti < layout.tensors().size(); ++ti) {
    const uint8_t d = opt.Decays(ti) ? 1 : 0;
    if (!decays.empty() && decays.back() == d) continue;
    bounds.push_back(decays.empty() ? 0 : layout.tensors()[ti].offset);
    decays.push_back(d);
  }
  bounds.push_back(n);
  const DevRuns runs(bounds, decays);
  std::vector<float> p = test::RandomNonZero(rng, n, 1e-3f, 0.5f);
  for (int64_t i = 0; i < n; ++i) p[i] = padding[i] ? 0.f : p[i];
  DevArray<float> p_dev(p), m_dev(std::vector<float>(n, 0.f)), v_dev(std::vector<float>(n, 0.f));
  DevArray<bf16> pb_dev(n);
  pb_dev.Poison();
  for (int64_t t = 1; t <= 5; ++t) {
    std::vector<float> raw = test::RandomNonZero(rng, n, 1e-5f, 1.f);
    for (int64_t i = 0; i < n; ++i) raw[i] = padding[i] ? 0.f : raw[i];
    const float gs = t % 2 == 0 ? 0.25f + 0.1f * static_cast<float>(t) : 1.0f;
    const float lr = 3e-4f * static_cast<float>(t);
    std::vector<float> scaled = raw;
    for (float& x : scaled) x *= gs;  // what ClipGradNorm does before AdamW::Step
    opt.Step(p.data(), scaled.data(), lr);

    DevArray<float> g_dev(raw);
    if (launches == Launches::kWholeBuffer) {
      const AdamWScalars s = AdamWStepScalars(lr, acfg.beta1, acfg.beta2, acfg.eps,
                                              acfg.weight_decay, opt.Decays(0), t, gs);
      DYT_ASSERT_OK(AdamWUpdate(p_dev.get(), pb_dev.get(), g_dev.get(), m_dev.get(), v_dev.get(), n,
                                s, nullptr));
    } else if (launches == Launches::kDecayRuns) {
      const AdamWScalars s =
          AdamWStepScalars(lr, acfg.beta1, acfg.beta2, acfg.eps, acfg.weight_decay, true, t, gs);
      DYT_ASSERT_OK(AdamWUpdate(p_dev.get(), pb_dev.get(), g_dev.get(), m_dev.get(), v_dev.get(), n,
                                s, nullptr, &runs.runs));
    } else {
      for (size_t ti = 0; ti < layout.tensors().size(); ++ti) {
        const ParamTensor& pt = layout.tensors()[ti];
        const AdamWScalars s = AdamWStepScalars(lr, acfg.beta1, acfg.beta2, acfg.eps,
                                                acfg.weight_decay, opt.Decays(ti), t, gs);
        const int64_t o = pt.offset;
        DYT_ASSERT_OK(AdamWUpdate(p_dev.get() + o, pb_dev.get() + o, g_dev.get() + o,
                                  m_dev.get() + o, v_dev.get() + o, pt.numel, s, nullptr));
      }
    }
    DYT_TEST_CUDA(cudaDeviceSynchronize());
    const std::vector<float> p_gpu = p_dev.Download();
    const struct {
      const char* name;
      std::vector<float> got;
      const std::vector<float>& want;
    } outs[] = {
        {"params", p_gpu, p}, {"m", m_dev.Download(), opt.m()}, {"v", v_dev.Download(), opt.v()}};
    for (const auto& o : outs) {
      double ss = 0;
      for (float x : o.want) ss += double(x) * x;
      const double rms = std::sqrt(ss / static_cast<double>(n));
      double worst_rel = 0;
      int64_t worst_i = -1;
      for (int64_t i = 0; i < n; ++i) {
        const double rel =
            std::fabs(double(o.got[i]) - o.want[i]) / std::max(std::fabs(double(o.want[i])), rms);
        if (!(rel <= worst_rel)) {
          worst_rel = rel;
          worst_i = i;
        }
      }
      const Worst w = CompareUlps(o.got, o.want);
      EXPECT_LE(worst_rel, 1e-6) << "step " << t << " " << o.name << ": worst relative error "
                                 << worst_rel << " at " << worst_i << " (gpu "
                                 << (worst_i >= 0 ? o.got[worst_i] : 0.f) << ", cpu "
                                 << (worst_i >= 0 ? o.want[worst_i] : 0.f) << ")";
      // Informational: how far the CPU code is from the kernel (expected: 0 ulps).
      std::printf("[ step %lld ] %-6s %lld of %lld elements differ, max %lld ulps, max rel %.3g\n",
                  static_cast<long long>(t), o.name, static_cast<long long>(w.count_diff),
                  static_cast<long long>(n), static_cast<long long>(w.ulps), worst_rel);
    }
    const std::vector<float> pb = pb_dev.Download();
    int64_t bad_bf16 = 0;  // per tensor, the padding's bf16 copy is never written
    for (int64_t i = 0; i < n; ++i) {
      bad_bf16 += (whole_buffer || !padding[i]) && pb[i] != test::RoundToBf16(p_gpu[i]);
    }
    EXPECT_EQ(bad_bf16, 0) << "step " << t << ": params_bf16 != bf16(params)";
  }
}

TEST(AdamWKernelTest, MatchesCpuTwinPerTensorWithAndWithoutDecay) {
  DYT_REQUIRE_GPU();
  CheckAgainstTwin(/*no_decay_norms=*/true, Launches::kPerTensor, test::TestSeed());
}

TEST(AdamWKernelTest, MatchesCpuTwinWholeBuffer) {
  DYT_REQUIRE_GPU();
  CheckAgainstTwin(/*no_decay_norms=*/false, Launches::kWholeBuffer, test::TestSeed());
}

TEST(AdamWKernelTest, MatchesCpuTwinWholeBufferWithDecayRuns) {
  DYT_REQUIRE_GPU();
  CheckAgainstTwin(/*no_decay_norms=*/true, Launches::kDecayRuns, test::TestSeed());
}

TEST(AdamWKernelTest, StepScalarsFollowAdamWStep) {
  // The bias corrections of AdamW::Step: bc = 1 - float(pow(double(beta), t)).
  for (int64_t t : {int64_t{1}, int64_t{2}, int64_t{10}, int64_t{1000}}) {
    const AdamWScalars s = AdamWStepScalars(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, true, t, 0.5f);
    const float bc1 = 1.0f - static_cast<float>(std::pow(double(0.9f), static_cast<double>(t)));
    const float bc2 = 1.0f - static_cast<float>(std::pow(double(0.95f), static_cast<double>(t)));
    EXPECT_EQ(s.step_size, 1e-3f / bc1) << "t=" << t;
    EXPECT_EQ(s.bc2_sqrt, std::sqrt(bc2)) << "t=" << t;
    EXPECT_FLOAT_EQ(s.decay, 1.0f - 1e-4f);
    EXPECT_EQ(s.grad_scale, 0.5f);
    EXPECT_EQ(s.beta1, 0.9f);
  }
  EXPECT_EQ(AdamWStepScalars(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, false, 1, 1.f).decay, 1.0f);
}

TEST(AdamWKernelTest, RejectsBadArgumentsWithoutLaunching) {
  float* f = reinterpret_cast<float*>(uintptr_t{256});
  const AdamWScalars s = AdamWStepScalars(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, true, 1, 1.f);
  EXPECT_EQ(AdamWUpdate(f, nullptr, f, f, f, -1, s, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AdamWUpdate(nullptr, nullptr, f, f, f, 8, s, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AdamWUpdate(f, nullptr, f, nullptr, f, 8, s, nullptr).code(),
            StatusCode::kInvalidArgument);
  AdamWScalars bad = s;
  bad.bc2_sqrt = 0.f;  // t = 0: no step has bias corrections yet
  EXPECT_EQ(AdamWUpdate(f, nullptr, f, f, f, 8, bad, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(AdamWUpdate(nullptr, nullptr, nullptr, nullptr, nullptr, 0, s, nullptr).ok());
  const int64_t* bounds = reinterpret_cast<const int64_t*>(uintptr_t{512});
  const uint8_t* decays = reinterpret_cast<const uint8_t*>(uintptr_t{1024});
  for (const auto& [runs, what] :
       {std::pair{AdamWDecayRuns{bounds, decays, 0}, "runs.count=0"},
        std::pair{AdamWDecayRuns{bounds, decays, AdamWDecayRuns::kMaxRuns + 1}, "runs.count=4097"},
        std::pair{AdamWDecayRuns{nullptr, decays, 2}, "runs.bounds is null"},
        std::pair{AdamWDecayRuns{bounds, nullptr, 2}, "runs.decays is null"}}) {
    const Status st = AdamWUpdate(f, nullptr, f, f, f, 8, s, nullptr, &runs);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << what;
    EXPECT_NE(st.message().find(what), std::string::npos) << st.ToString();
  }
}

}  // namespace
}  // namespace dyt::cuda
