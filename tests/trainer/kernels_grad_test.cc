// Finite-difference checks of every CPU layer's backward pass.
//
// For a layer f and a fixed random weighting w, the scalar L(x) = sum(w * f(x)) has
// dL/dx = backward(dy = w). We compare the analytic gradient with central differences
// (L(x + h e_i) - L(x - h e_i)) / 2h, L summed in double, for a random subset of the inputs
// and every parameter. Tolerance: |fd - analytic| <= 2e-3 + 2e-2 * |analytic| — central
// differences in fp32 with h = 1e-2 carry O(h^2) truncation plus rounding of order
// 1e-7 * |L| / h, both far below that on these small shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "trainer/cpu/fast_math.h"
#include "trainer/cpu/kernels.h"
#include "trainer/model/rng.h"

namespace dyt::cpu {
namespace {

std::vector<float> Random(size_t n, uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(r.NextNormal()) * scale + offset;
  return v;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

// Checks `analytic` (dL/dtheta) against central differences of `loss` over `theta`,
// at up to `max_checks` evenly spread indices.
void CheckGrad(const char* what, std::vector<float>& theta, const std::vector<float>& analytic,
               const std::function<double()>& loss, size_t max_checks = 40, float h = 1e-2f) {
  ASSERT_EQ(theta.size(), analytic.size());
  const size_t stride = std::max<size_t>(1, theta.size() / max_checks);
  int checked = 0;
  for (size_t i = 0; i < theta.size(); i += stride) {
    const float saved = theta[i];
    theta[i] = saved + h;
    const double lp = loss();
    theta[i] = saved - h;
    const double lm = loss();
    theta[i] = saved;
    const double fd = (lp - lm) / (2.0 * h);
    EXPECT_NEAR(fd, analytic[i], 2e-3 + 2e-2 * std::fabs(analytic[i])) << what << "[" << i << "]";
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(KernelGradTest, DytAllGradients) {
  for (bool with_bias : {true, false}) {
    const int64_t N = 7;
    const int D = 19;
    auto x = Random(N * D, 1, 1.5f);
    auto gamma = Random(D, 2, 0.3f, 1.0f);
    auto beta = Random(D, 3, 0.3f);
    std::vector<float> alpha = {0.7f};
    auto w = Random(N * D, 4);
    std::vector<float> y(N * D), t(N * D);
    auto loss = [&]() {
      DytForward(y.data(), t.data(), x.data(), alpha[0], gamma.data(),
                 with_bias ? beta.data() : nullptr, N, D);
      return Dot(y, w);
    };
    loss();
    std::vector<float> dx(N * D), dalpha(1, 0.0f), dgamma(D, 0.0f), dbeta(D, 0.0f);
    DytBackward(dx.data(), dalpha.data(), dgamma.data(), with_bias ? dbeta.data() : nullptr,
                w.data(), x.data(), t.data(), alpha[0], gamma.data(), N, D);
    CheckGrad("dyt dx", x, dx, loss);
    CheckGrad("dyt dalpha", alpha, dalpha, loss, 1, 1e-3f);
    CheckGrad("dyt dgamma", gamma, dgamma, loss);
    if (with_bias) CheckGrad("dyt dbeta", beta, dbeta, loss);
    // The forward really is gamma * tanh(alpha x) + beta.
    loss();  // CheckGrad leaves y from a perturbed evaluation
    for (int64_t i = 0; i < N * D; ++i) {
      const double want =
          gamma[i % D] * std::tanh(double(alpha[0]) * x[i]) + (with_bias ? beta[i % D] : 0.0);
      ASSERT_NEAR(y[i], want, 1e-6 * (1 + std::fabs(want)));
    }
  }
}

TEST(KernelGradTest, FastTanhMatchesLibm) {
  double worst = 0;
  for (double x = -20; x <= 20; x += 1e-3) {
    worst = std::max(worst, std::fabs(double(FastTanh(float(x))) - std::tanh(double(float(x)))));
  }
  EXPECT_LT(worst, 3e-7);
}

TEST(KernelGradTest, RmsNormGradients) {
  const int64_t N = 5;
  const int D = 23;
  auto x = Random(N * D, 11, 2.0f);
  auto wt = Random(D, 12, 0.2f, 1.0f);
  auto w = Random(N * D, 13);
  std::vector<float> y(N * D), rstd(N);
  auto loss = [&]() {
    RmsNormForward(y.data(), rstd.data(), x.data(), wt.data(), 1e-5f, N, D);
    return Dot(y, w);
  };
  loss();
  std::vector<float> dx(N * D), dwt(D, 0.0f);
  RmsNormBackward(dx.data(), dwt.data(), w.data(), x.data(), rstd.data(), wt.data(), N, D);
  CheckGrad("rmsnorm dx", x, dx, loss);
  CheckGrad("rmsnorm dw", wt, dwt, loss);
}

TEST(KernelGradTest, RopeIsARotationAndItsBackwardIsTheTranspose) {
  const int B = 2, T = 5, H = 3, hd = 8;
  const int64_t n = int64_t(B) * T * H * hd;
  std::vector<float> cs(T * hd / 2), sn(T * hd / 2);
  RopeTables(cs.data(), sn.data(), T, hd, 10000.0f);
  auto x = Random(n, 21);
  auto w = Random(n, 22);
  std::vector<float> y;
  auto loss = [&]() {
    y = x;
    RopeForward(y.data(), cs.data(), sn.data(), B, T, H, hd);
    return Dot(y, w);
  };
  loss();
  std::vector<float> dx = w;
  RopeBackward(dx.data(), cs.data(), sn.data(), B, T, H, hd);
  CheckGrad("rope dx", x, dx, loss);
  // Position 0 is unrotated; the norm of every pair is preserved.
  for (int i = 0; i < H * hd; ++i) EXPECT_FLOAT_EQ(y[i], x[i]);
  // Explicit check of one pair at t = 3, i = 1: angle 3 * 10000^(-2/8).
  const double ang = 3 * std::pow(10000.0, -2.0 / 8);
  const int64_t base = (int64_t(0) * T + 3) * H * hd + 1 * hd;  // b 0, t 3, head 1
  EXPECT_NEAR(y[base + 2], x[base + 2] * std::cos(ang) - x[base + 3] * std::sin(ang), 1e-5);
  EXPECT_NEAR(y[base + 3], x[base + 2] * std::sin(ang) + x[base + 3] * std::cos(ang), 1e-5);
}

TEST(KernelGradTest, SwigluGradients) {
  const int64_t n = 64;
  auto h1 = Random(n, 31, 2.0f);
  auto h3 = Random(n, 32, 1.0f);
  auto w = Random(n, 33);
  std::vector<float> g(n);
  auto loss = [&]() {
    SwigluForward(g.data(), h1.data(), h3.data(), n);
    return Dot(g, w);
  };
  loss();
  std::vector<float> d1(n), d3(n);
  SwigluBackward(d1.data(), d3.data(), w.data(), h1.data(), h3.data(), n);
  CheckGrad("swiglu dh1", h1, d1, loss, 64);
  CheckGrad("swiglu dh3", h3, d3, loss, 64);
}

TEST(KernelGradTest, AttentionGradientsWithGqaAndPartialBlocks) {
  // T = 70 spans two query blocks (64 + 6), Hq = 4 over Hkv = 2.
  const int B = 2, T = 70, H = 4, HKV = 2, hd = 6;
  auto q = Random(int64_t(B) * T * H * hd, 41);
  auto k = Random(int64_t(B) * T * HKV * hd, 42);
  auto v = Random(int64_t(B) * T * HKV * hd, 43);
  auto w = Random(q.size(), 44);
  std::vector<float> out(q.size()), lse(int64_t(B) * H * T);
  std::vector<float> scratch(AttentionScratchFloats(T) * 64);
  auto loss = [&]() {
    AttentionForward(out.data(), lse.data(), q.data(), k.data(), v.data(), scratch.data(), B, T, H,
                     HKV, hd);
    return Dot(out, w);
  };
  loss();
  // Reference forward in double for one (b, h, t): causal softmax over keys 0..t.
  {
    const int b = 1, h = 3, t = 66, kh = h / (H / HKV);
    std::vector<double> s(t + 1);
    double mx = -1e300;
    for (int j = 0; j <= t; ++j) {
      double d = 0;
      for (int i = 0; i < hd; ++i) {
        d += double(q[((int64_t(b) * T + t) * H + h) * hd + i]) *
             k[((int64_t(b) * T + j) * HKV + kh) * hd + i];
      }
      s[j] = d / std::sqrt(double(hd));
      mx = std::max(mx, s[j]);
    }
    double z = 0;
    for (double& e : s) z += (e = std::exp(e - mx));
    for (int i = 0; i < hd; ++i) {
      double o = 0;
      for (int j = 0; j <= t; ++j) o += s[j] / z * v[((int64_t(b) * T + j) * HKV + kh) * hd + i];
      EXPECT_NEAR(out[((int64_t(b) * T + t) * H + h) * hd + i], o, 1e-5);
    }
  }
  std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
  AttentionBackward(dq.data(), dk.data(), dv.data(), w.data(), out.data(), lse.data(), q.data(),
                    k.data(), v.data(), scratch.data(), B, T, H, HKV, hd);
  CheckGrad("attention dq", q, dq, loss, 60);
  CheckGrad("attention dk", k, dk, loss, 60);
  CheckGrad("attention dv", v, dv, loss, 60);
}

TEST(KernelGradTest, CrossEntropyValueAndGradient) {
  const int64_t N = 6;
  const int V = 37;
  auto logits = Random(N * V, 51, 3.0f);
  std::vector<int32_t> tgt = {0, 5, 36, 7, 7, 20};
  auto loss = [&]() { return CrossEntropyForward(logits.data(), tgt.data(), N, V); };
  // Reference value in double.
  double want = 0;
  for (int64_t n = 0; n < N; ++n) {
    double mx = -1e300, z = 0;
    for (int i = 0; i < V; ++i) mx = std::max(mx, double(logits[n * V + i]));
    for (int i = 0; i < V; ++i) z += std::exp(logits[n * V + i] - mx);
    want += std::log(z) + mx - logits[n * V + tgt[n]];
  }
  EXPECT_NEAR(loss(), want, 1e-5 * want);
  std::vector<float> grad = logits;
  const double l2 = CrossEntropyForwardBackward(grad.data(), tgt.data(), N, V, 1.0f);
  EXPECT_NEAR(l2, want, 1e-5 * want);
  CheckGrad("cross-entropy dlogits", logits, grad, loss, 80, 1e-2f);
}

TEST(KernelGradTest, EmbeddingAndScaleGradients) {
  const int64_t N = 9;
  const int D = 11, V = 5;
  auto table = Random(V * D, 61);
  std::vector<float> scale = {2.5f};
  std::vector<int32_t> tok = {0, 3, 3, 1, 4, 3, 0, 2, 2};  // repeats must accumulate
  auto w = Random(N * D, 62);
  std::vector<float> x(N * D);
  auto loss = [&]() {
    EmbeddingForward(x.data(), tok.data(), table.data(), scale[0], N, D);
    return Dot(x, w);
  };
  loss();
  std::vector<float> dtable(V * D, 0.0f), dscale(1, 0.0f);
  EmbeddingBackward(dtable.data(), dscale.data(), w.data(), tok.data(), table.data(), scale[0], N,
                    D);
  CheckGrad("embedding dtable", table, dtable, loss, 55);
  CheckGrad("embedding dscale", scale, dscale, loss, 1);
}

TEST(KernelGradTest, LinearGradients) {
  const int64_t N = 6;
  const int in = 9, out = 7;
  auto x = Random(N * in, 71);
  auto wt = Random(int64_t(out) * in, 72);
  auto w = Random(N * out, 73);
  std::vector<float> y(N * out);
  auto loss = [&]() {
    LinearForward(y.data(), x.data(), wt.data(), N, in, out);
    return Dot(y, w);
  };
  loss();
  std::vector<float> dx(N * in), dw(wt.size(), 0.0f);
  LinearBackward(dx.data(), dw.data(), w.data(), x.data(), wt.data(), N, in, out);
  CheckGrad("linear dx", x, dx, loss);
  CheckGrad("linear dw", wt, dw, loss);
}

}  // namespace
}  // namespace dyt::cpu
