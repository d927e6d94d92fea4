// The flash-attention kernels (trainer/cuda/attention_kernels.h) against their CPU twin
// (dyt::cpu::AttentionForward / AttentionBackward) on bf16-rounded random inputs in [-1, 1].
//
// Tolerances (relative L2, test_util.h): out, dq, dk, dv kBf16Tol (1e-2); lse kFp32Tol (1e-4:
// fp32 throughout, only the summation order and exp2f differ from the CPU). A host emulation
// of the kernels' fragment data flow (ldmatrix / mma semantics from the PTX ISA, bf16 rounding
// of P and dS as the kernels do) against an fp64 reference gave about 2e-3 for out, dv, and
// 2.5e-3 for dq, dk (dS rounded to bf16), 4e-8 for lse. Every case prints its measured errors.
// T = 1: dq and dk are exactly 0 (the softmax of one key does not depend on its score), so
// they are checked against an absolute bound instead.
// The backward is checked on its own: both sides get the CPU forward's out rounded to bf16
// and its lse, so a forward error cannot hide or cause a backward one. The fused-view test
// chains the GPU forward into the GPU backward as the trainer does.
#include "trainer/cuda/attention_kernels.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/cpu/kernels.h"

namespace dyt::cuda {
namespace {

using test::DevArray;
using test::RelL2;
using test::Rounded;

// |dq|, |dk| bound when their exact value is 0 (T = 1): what is left of dP - Dvec after fp32
// rounding (both are dot products of about 1 in magnitude).
constexpr double kZeroGradTol = 1e-3;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct AttnCase {
  int B, T, H, Hkv, hd;
  float q_scale = 1.f;  // > 1: sharper softmax
};

std::string CaseName(const AttnCase& c) {
  std::string s = "B";
  s += std::to_string(c.B);
  s += " T";
  s += std::to_string(c.T);
  s += " H";
  s += std::to_string(c.H);
  s += "/";
  s += std::to_string(c.Hkv);
  s += " hd";
  s += std::to_string(c.hd);
  if (c.q_scale != 1.f) {
    s += " q*";
    s += std::to_string(static_cast<int>(c.q_scale));
  }
  return s;
}

// Uniform in [-hi, hi], rounded to bf16.
std::vector<float> RandomBf16(std::mt19937_64& rng, size_t n, float hi) {
  std::uniform_real_distribution<float> dist(-hi, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return Rounded<bf16>(std::move(v));
}

// ---- the CPU twin -------------------------------------------------------------------------

struct Inputs {
  std::vector<float> q, k, v, dout;  // contiguous [B*T, H*hd] / [B*T, Hkv*hd]
};

Inputs MakeInputs(const AttnCase& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const size_t rows = static_cast<size_t>(c.B) * c.T;
  Inputs in;
  in.q = RandomBf16(rng, rows * c.H * c.hd, c.q_scale);
  in.k = RandomBf16(rng, rows * c.Hkv * c.hd, 1.f);
  in.v = RandomBf16(rng, rows * c.Hkv * c.hd, 1.f);
  in.dout = RandomBf16(rng, rows * c.H * c.hd, 1.f);
  return in;
}

std::vector<float> CpuScratch(int T) {
  return std::vector<float>(cpu::AttentionScratchFloats(T) * omp_get_max_threads());
}

struct CpuForward {
  std::vector<float> out, lse;
};

CpuForward RunCpuForward(const AttnCase& c, const Inputs& in) {
  const size_t rows = static_cast<size_t>(c.B) * c.T;
  CpuForward f;
  f.out.resize(rows * c.H * c.hd);
  f.lse.resize(static_cast<size_t>(c.B) * c.H * c.T);
  std::vector<float> scratch = CpuScratch(c.T);
  cpu::AttentionForward(f.out.data(), f.lse.data(), in.q.data(), in.k.data(), in.v.data(),
                        scratch.data(), c.B, c.T, c.H, c.Hkv, c.hd);
  return f;
}

struct Grads {
  std::vector<float> dq, dk, dv;
};

Grads RunCpuBackward(const AttnCase& c, const Inputs& in, const std::vector<float>& out,
                     const std::vector<float>& lse) {
  const size_t rows = static_cast<size_t>(c.B) * c.T;
  Grads g;
  g.dq.resize(rows * c.H * c.hd);
  g.dk.resize(rows * c.Hkv * c.hd);
  g.dv.resize(rows * c.Hkv * c.hd);
  std::vector<float> scratch = CpuScratch(c.T);
  cpu::AttentionBackward(g.dq.data(), g.dk.data(), g.dv.data(), in.dout.data(), out.data(),
                         lse.data(), in.q.data(), in.k.data(), in.v.data(), scratch.data(), c.B,
                         c.T, c.H, c.Hkv, c.hd);
  return g;
}

// ---- strided views --------------------------------------------------------------------------

// Where a [rows, width] tensor lives inside a [buffer_rows, ld] buffer: columns
// [col, col + width) of the first `rows` rows.
struct View {
  int64_t col, width, ld;
};

// The buffer: every cell NaN (inputs: a read outside the views poisons the result) except the
// views' cells.
std::vector<float> Pack(int64_t buffer_rows, int64_t ld, int64_t rows,
                        const std::vector<std::pair<View, const std::vector<float>*>>& parts) {
  std::vector<float> buf(static_cast<size_t>(buffer_rows * ld), kNaN);
  for (const auto& [view, data] : parts) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < view.width; ++i) {
        buf[r * ld + view.col + i] = (*data)[r * view.width + i];
      }
    }
  }
  return buf;
}

std::vector<float> Unpack(const std::vector<float>& buf, const View& view, int64_t rows) {
  std::vector<float> out(static_cast<size_t>(rows * view.width));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < view.width; ++i)
      out[r * view.width + i] = buf[r * view.ld + view.col + i];
  }
  return out;
}

// Counts the bf16 cells of a poisoned (0xFF bytes) buffer outside the views that no longer
// hold the poison; `rows` rows are covered by the views, the rest of the buffer is padding.
int64_t CountOutsideWrites(const std::vector<uint8_t>& bytes, int64_t ld, int64_t rows,
                           const std::vector<View>& views) {
  const int64_t cells = static_cast<int64_t>(bytes.size() / 2);
  int64_t bad = 0;
  for (int64_t i = 0; i < cells; ++i) {
    const int64_t r = i / ld, c = i % ld;
    bool inside = false;
    if (r < rows) {
      for (const View& v : views) inside = inside || (c >= v.col && c < v.col + v.width);
    }
    if (!inside && (bytes[2 * i] != 0xFF || bytes[2 * i + 1] != 0xFF)) ++bad;
  }
  return bad;
}

// Poisoned fp32 entries past `n`.
int64_t CountTailWrites(const std::vector<uint8_t>& bytes, size_t n) {
  int64_t bad = 0;
  for (size_t i = n * 4; i < bytes.size(); ++i) bad += bytes[i] != 0xFF;
  return bad;
}

// ---- checks -------------------------------------------------------------------------------

double Check(const char* what, const std::vector<float>& got, const std::vector<float>& want,
             double tol) {
  const int64_t bad = test::FirstNonFinite(got);
  EXPECT_EQ(bad, -1) << what << ": element " << bad << " is not finite (never written?)";
  const double err = RelL2(got, want);
  EXPECT_LE(err, tol) << what << ": ||gpu - cpu|| / ||cpu|| = " << err;
  return err;
}

// For a gradient whose exact value is 0: every element finite and within kZeroGradTol; returns
// the largest magnitude.
double CheckZero(const char* what, const std::vector<float>& got) {
  const int64_t bad = test::FirstNonFinite(got);
  EXPECT_EQ(bad, -1) << what << ": element " << bad << " is not finite (never written?)";
  double mx = 0;
  for (float f : got) mx = std::max(mx, std::fabs(static_cast<double>(f)));
  EXPECT_LE(mx, kZeroGradTol) << what << ": exactly 0 in theory (T = 1), got max |x| = " << mx;
  return mx;
}

// The GPU side of one case. Contiguous: each tensor in its own exact-size buffer (ld = width).
// Fused: q, k, v inside one qkv buffer and dq, dk, dv inside one gradient buffer, both with
// ld = (H + 2 Hkv) * hd + 16 and one extra row; out and dout with ld = H * hd + 8 and one
// extra row; lse with 64 floats of tail. Input padding holds NaN, output buffers start
// poisoned, and the padding of the outputs must keep its poison.
struct GpuRun {
  AttnCase c;
  bool fused;
  int64_t rows, qw, kvw;  // token rows, q row width, k/v row width
  int64_t ld_qkv, ld_o, buffer_rows;
  View q_view, k_view, v_view, o_view;
  AttentionShape shape;

  GpuRun(const AttnCase& cs, bool fu) : c(cs), fused(fu) {
    rows = static_cast<int64_t>(c.B) * c.T;
    qw = static_cast<int64_t>(c.H) * c.hd;
    kvw = static_cast<int64_t>(c.Hkv) * c.hd;
    ld_qkv = fused ? qw + 2 * kvw + 16 : 0;
    ld_o = fused ? qw + 8 : qw;
    buffer_rows = fused ? rows + 1 : rows;
    q_view = {0, qw, fused ? ld_qkv : qw};
    k_view = {fused ? qw : 0, kvw, fused ? ld_qkv : kvw};
    v_view = {fused ? qw + kvw : 0, kvw, fused ? ld_qkv : kvw};
    o_view = {0, qw, ld_o};
    shape = {c.B, c.T, c.H, c.Hkv, c.hd, q_view.ld, k_view.ld, ld_o};
  }
};

struct GpuCaseResult {
  std::vector<float> out, lse;
  Grads grads;
  std::vector<uint8_t> dq_bytes, dk_bytes, dv_bytes;  // raw gradient bits (determinism)
};

// Runs forward, checks it, then the backward in `mode` on (bwd_out, bwd_lse) (or the GPU
// forward's outputs when bwd_out is null), `bwd_runs` times, checking the bits agree across
// runs (kAtomicDq: dk and dv bit for bit, dq to bf16 tolerance: its atomics add in any order).
// rope (optional): RoPE tables [T, hd / 2] each, given to the backward (RopeTables).
GpuCaseResult RunGpu(const GpuRun& g, const Inputs& in, const std::vector<float>* bwd_out,
                     const std::vector<float>* bwd_lse, int bwd_runs, AttentionBackwardMode mode,
                     const std::pair<std::vector<float>, std::vector<float>>* rope) {
  GpuCaseResult res;
  const int64_t rows = g.rows;
  const size_t n_lse = static_cast<size_t>(g.c.B) * g.c.H * g.c.T;
  const size_t lse_tail = g.fused ? 64 : 0;

  // Inputs.
  std::unique_ptr<DevArray<bf16>> qkv, q, k, v;
  const bf16 *qp, *kp, *vp;
  if (g.fused) {
    qkv = std::make_unique<DevArray<bf16>>(Pack(
        g.buffer_rows, g.ld_qkv, rows, {{g.q_view, &in.q}, {g.k_view, &in.k}, {g.v_view, &in.v}}));
    qp = qkv->get();
    kp = qkv->get() + g.k_view.col;
    vp = qkv->get() + g.v_view.col;
  } else {
    q = std::make_unique<DevArray<bf16>>(in.q);
    k = std::make_unique<DevArray<bf16>>(in.k);
    v = std::make_unique<DevArray<bf16>>(in.v);
    qp = q->get();
    kp = k->get();
    vp = v->get();
  }
  DevArray<bf16> dout(Pack(g.buffer_rows, g.ld_o, rows, {{g.o_view, &in.dout}}));
  // The inputs' bits, to check at the end that neither pass wrote into them.
  const std::vector<uint8_t> inputs_before[4] = {
      g.fused ? qkv->Bytes() : q->Bytes(), g.fused ? std::vector<uint8_t>{} : k->Bytes(),
      g.fused ? std::vector<uint8_t>{} : v->Bytes(), dout.Bytes()};

  // Forward.
  DevArray<bf16> out(static_cast<size_t>(g.buffer_rows * g.ld_o));
  DevArray<float> lse(n_lse + lse_tail);
  out.Poison();
  lse.Poison();
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  const Status fst = FlashAttentionForward(out.get(), lse.get(), qp, kp, vp, g.shape, nullptr);
  EXPECT_TRUE(fst.ok()) << fst.ToString();
  if (!fst.ok()) return res;
  DYT_TEST_CUDA(cudaDeviceSynchronize());
  res.out = Unpack(out.Download(), g.o_view, rows);
  std::vector<float> lse_all = lse.Download();
  res.lse.assign(lse_all.begin(), lse_all.begin() + static_cast<int64_t>(n_lse));
  EXPECT_EQ(CountOutsideWrites(out.Bytes(), g.ld_o, rows, {g.o_view}), 0)
      << "forward wrote outside the out view";
  EXPECT_EQ(CountTailWrites(lse.Bytes(), n_lse), 0) << "forward wrote past lse";

  // Backward inputs: the given out / lse, or the GPU forward's (already in place).
  if (bwd_out != nullptr) out.Upload(Pack(g.buffer_rows, g.ld_o, rows, {{g.o_view, bwd_out}}));
  if (bwd_lse != nullptr) {
    std::vector<float> l = *bwd_lse;
    l.resize(n_lse + lse_tail, kNaN);
    lse.Upload(l);
  }

  // Backward outputs.
  const int64_t ld_dq = g.fused ? g.ld_qkv : g.qw;
  const int64_t ld_dkv = g.fused ? g.ld_qkv : g.kvw;
  std::unique_ptr<DevArray<bf16>> dqkv, dq, dk, dv;
  if (g.fused) {
    dqkv = std::make_unique<DevArray<bf16>>(static_cast<size_t>(g.buffer_rows * g.ld_qkv));
  } else {
    dq = std::make_unique<DevArray<bf16>>(static_cast<size_t>(rows * g.qw));
    dk = std::make_unique<DevArray<bf16>>(static_cast<size_t>(rows * g.kvw));
    dv = std::make_unique<DevArray<bf16>>(static_cast<size_t>(rows * g.kvw));
  }
  bf16* dqp = g.fused ? dqkv->get() : dq->get();
  bf16* dkp = g.fused ? dqkv->get() + g.k_view.col : dk->get();
  bf16* dvp = g.fused ? dqkv->get() + g.v_view.col : dv->get();
  const size_t scratch_bytes = FlashAttentionBackwardScratchBytes(g.shape, mode);
  EXPECT_GE(scratch_bytes, n_lse * sizeof(float));
  if (mode == AttentionBackwardMode::kAtomicDq) {
    EXPECT_GE(scratch_bytes, n_lse * sizeof(float) * (1 + g.c.hd)) << "no room for the dq sums";
  }
  DevArray<float> scratch((scratch_bytes + 3) / 4);
  std::unique_ptr<DevArray<float>> rope_cos, rope_sin;
  RopeTables tables;
  if (rope != nullptr) {
    rope_cos = std::make_unique<DevArray<float>>(rope->first);
    rope_sin = std::make_unique<DevArray<float>>(rope->second);
    tables = {rope_cos->get(), rope_sin->get()};
  }

  for (int run = 0; run < bwd_runs; ++run) {
    if (g.fused) {
      dqkv->Poison();
    } else {
      dq->Poison();
      dk->Poison();
      dv->Poison();
    }
    scratch.Poison();
    DYT_TEST_CUDA(cudaDeviceSynchronize());
    const Status bst = FlashAttentionBackward(dqp, dkp, dvp, ld_dq, ld_dkv, dout.get(), out.get(),
                                              lse.get(), qp, kp, vp, g.shape, scratch.get(),
                                              scratch_bytes, nullptr, mode, tables);
    EXPECT_TRUE(bst.ok()) << bst.ToString();
    if (!bst.ok()) return res;
    DYT_TEST_CUDA(cudaDeviceSynchronize());
    Grads gr;
    std::vector<uint8_t> bq, bk, bv;
    if (g.fused) {
      const std::vector<float> all = dqkv->Download();
      gr.dq = Unpack(all, g.q_view, rows);
      gr.dk = Unpack(all, g.k_view, rows);
      gr.dv = Unpack(all, g.v_view, rows);
      bq = dqkv->Bytes();
      EXPECT_EQ(CountOutsideWrites(bq, g.ld_qkv, rows, {g.q_view, g.k_view, g.v_view}), 0)
          << "backward wrote outside the dq / dk / dv views";
    } else {
      gr.dq = dq->Download();
      gr.dk = dk->Download();
      gr.dv = dv->Download();
      bq = dq->Bytes();
      bk = dk->Bytes();
      bv = dv->Bytes();
    }
    if (run == 0) {
      res.grads = std::move(gr);
      res.dq_bytes = std::move(bq);
      res.dk_bytes = std::move(bk);
      res.dv_bytes = std::move(bv);
    } else if (mode != AttentionBackwardMode::kAtomicDq) {
      EXPECT_TRUE(bq == res.dq_bytes && bk == res.dk_bytes && bv == res.dv_bytes)
          << "backward run " << run << " differs from run 0 (not deterministic)";
    } else {
      EXPECT_TRUE(gr.dk == res.grads.dk && gr.dv == res.grads.dv)
          << "backward run " << run << ": dk or dv differs from run 0";
      EXPECT_LE(RelL2(gr.dq, res.grads.dq), test::kBf16Tol) << "backward run " << run << ": dq";
    }
  }
  const std::vector<uint8_t> inputs_after[4] = {
      g.fused ? qkv->Bytes() : q->Bytes(), g.fused ? std::vector<uint8_t>{} : k->Bytes(),
      g.fused ? std::vector<uint8_t>{} : v->Bytes(), dout.Bytes()};
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(inputs_after[i] == inputs_before[i])
        << "input buffer " << i << " (q / qkv, k, v, dout) was modified";
  }
  return res;
}

// One case end to end. chain: the backward consumes the GPU forward's out / lse (the CPU
// backward its own fp32 ones); otherwise both backwards get the CPU forward's, rounded.
// rope: the backward also applies RoPE's backward to dq and dk (checked against the CPU twin's
// gradients followed by cpu::RopeBackward).
void CheckCase(const AttnCase& c, bool fused, bool chain, int bwd_runs, uint64_t seed,
               AttentionBackwardMode mode = AttentionBackwardMode::kDeterministic,
               bool rope = false) {
  const char* mode_name = mode == AttentionBackwardMode::kAtomicDq    ? " atomic"
                          : mode == AttentionBackwardMode::kOrderedDq ? " ordered"
                                                                      : "";
  SCOPED_TRACE(testing::Message() << CaseName(c) << (fused ? " fused-views" : " contiguous")
                                  << (chain ? " chained" : "") << mode_name << (rope ? " rope" : "")
                                  << " seed=" << seed);
  const Inputs in = MakeInputs(c, seed);
  const CpuForward cf = RunCpuForward(c, in);
  const std::vector<float> out_r = Rounded<bf16>(cf.out);
  Grads cg = RunCpuBackward(c, in, chain ? cf.out : out_r, cf.lse);
  std::pair<std::vector<float>, std::vector<float>> tables;
  if (rope) {
    const size_t n = static_cast<size_t>(c.T) * c.hd / 2;
    tables.first.resize(n);
    tables.second.resize(n);
    cpu::RopeTables(tables.first.data(), tables.second.data(), c.T, c.hd, 10000.f);
    cpu::RopeBackward(cg.dq.data(), tables.first.data(), tables.second.data(), c.B, c.T, c.H, c.hd);
    cpu::RopeBackward(cg.dk.data(), tables.first.data(), tables.second.data(), c.B, c.T, c.Hkv,
                      c.hd);
  }

  const GpuRun g(c, fused);
  const GpuCaseResult r = RunGpu(g, in, chain ? nullptr : &out_r, chain ? nullptr : &cf.lse,
                                 bwd_runs, mode, rope ? &tables : nullptr);
  if (r.out.empty() || r.grads.dq.empty()) return;  // already failed
  const double e_out = Check("out", r.out, cf.out, test::kBf16Tol);
  const double e_lse = Check("lse", r.lse, cf.lse, test::kFp32Tol);
  double e_dq, e_dk;
  if (c.T == 1) {
    e_dq = CheckZero("dq", r.grads.dq);
    e_dk = CheckZero("dk", r.grads.dk);
  } else {
    e_dq = Check("dq", r.grads.dq, cg.dq, test::kBf16Tol);
    e_dk = Check("dk", r.grads.dk, cg.dk, test::kBf16Tol);
  }
  const double e_dv = Check("dv", r.grads.dv, cg.dv, test::kBf16Tol);
  std::printf("[attention] %-26s %-9s%s out %.2e lse %.2e dq %.2e dk %.2e dv %.2e\n",
              CaseName(c).c_str(), fused ? (chain ? "fused+ch" : "fused") : "contig", mode_name,
              e_out, e_lse, e_dq, e_dk, e_dv);
}

// ---- tests --------------------------------------------------------------------------------

// T: 1 (a single key), 17 and 100 (partial tiles), 64 and 128 (exact tiles), 257 (one row
// past a tile), 1024 (many kv tiles, both double buffers cycling).
class AttentionTest : public ::testing::TestWithParam<int> {};

TEST_P(AttentionTest, MatchesCpuTwin) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  const int T = GetParam();
  uint64_t n = 0;
  for (int hd : {64, 128}) {
    for (auto [H, Hkv] : {std::pair{3, 3}, std::pair{8, 2}}) {  // MHA, GQA groups of 4
      for (int B : {1, 3}) {
        CheckCase({B, T, H, Hkv, hd}, /*fused=*/false, /*chain=*/false, /*bwd_runs=*/1, seed + n++);
      }
    }
  }
}

// A sharper softmax (q scaled by 4: score ranges of several units), where the online
// softmax's rescaling and the lse matter most.
TEST_P(AttentionTest, SharpSoftmaxMatchesCpuTwin) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  const int T = GetParam();
  CheckCase({2, T, 4, 2, 64, 4.f}, false, false, 1, seed);
  CheckCase({1, T, 2, 1, 128, 4.f}, false, false, 1, seed + 1);
}

// q, k, v as views of one fused qkv buffer, dq, dk, dv into one fused gradient buffer, out /
// dout with a padded stride; nothing outside the views is read (NaN padding) or written
// (poison kept). Forward chained into the backward as in the trainer; backward run twice
// with identical bits.
TEST_P(AttentionTest, FusedViewsChainedAndDeterministic) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  const int T = GetParam();
  CheckCase({2, T, 8, 2, 64}, /*fused=*/true, /*chain=*/true, /*bwd_runs=*/2, seed);
  CheckCase({3, T, 4, 4, 128}, /*fused=*/true, /*chain=*/true, /*bwd_runs=*/2, seed + 1);
  CheckCase({1, T, 6, 2, 128}, /*fused=*/true, /*chain=*/false, /*bwd_runs=*/2, seed + 2);
}

// A one-pass backward mode on every head dim, MHA and GQA, contiguous and fused views, chained
// and not, each run `runs` times.
void CheckOnePassCases(int T, uint64_t seed, AttentionBackwardMode mode, int runs) {
  CheckCase({2, T, 8, 2, 64}, /*fused=*/false, /*chain=*/false, runs, seed, mode);
  CheckCase({1, T, 3, 3, 128}, /*fused=*/false, /*chain=*/false, runs, seed + 1, mode);
  CheckCase({3, T, 4, 4, 64}, /*fused=*/true, /*chain=*/true, 2, seed + 2, mode);
  CheckCase({2, T, 6, 2, 128}, /*fused=*/true, /*chain=*/true, 2, seed + 3, mode);
}

// The one-pass backward with dq by float atomics: dk / dv bits and dq within tolerance agree
// across two runs.
TEST_P(AttentionTest, AtomicDqMatchesCpuTwin) {
  DYT_REQUIRE_GPU();
  CheckOnePassCases(GetParam(), test::TestSeed(), AttentionBackwardMode::kAtomicDq, 2);
}

// The one-pass backward with dq's atomics in a fixed order: the same cases, and the bits of
// every gradient agree across runs (on the SIMT emulator with DYT_SIMT_BLOCKS > 1 the blocks
// really run at once and wait for each other).
TEST_P(AttentionTest, OrderedDqMatchesCpuTwinAndIsDeterministic) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  const int T = GetParam();
  constexpr auto kOrdered = AttentionBackwardMode::kOrderedDq;
  CheckOnePassCases(T, seed, kOrdered, 3);
  CheckCase({2, T, 8, 4, 64}, /*fused=*/true, /*chain=*/true, 2, seed + 4, kOrdered,
            /*rope=*/true);
}

// RoPE's backward fused into the stores of dq and dk (the trainer's use: q and k were rotated
// before the forward), two-pass and atomic; the ordered mode's test has a case of its own.
TEST_P(AttentionTest, RopeBackwardFusedMatchesCpuTwin) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  const int T = GetParam();
  using Mode = AttentionBackwardMode;
  CheckCase({2, T, 8, 2, 64}, /*fused=*/true, /*chain=*/true, 1, seed, Mode::kDeterministic, true);
  CheckCase({1, T, 4, 4, 128}, /*fused=*/false, /*chain=*/false, 1, seed + 1, Mode::kAtomicDq,
            true);
}

INSTANTIATE_TEST_SUITE_P(SeqLens, AttentionTest, ::testing::Values(1, 17, 64, 100, 128, 257, 1024),
                         [](const ::testing::TestParamInfo<int>& info) {
                           std::string name = "T";
                           name += std::to_string(info.param);
                           return name;
                         });

// A long sequence (64 query tiles): few heads so the CPU twin stays quick.
TEST(AttentionLongTest, T4096MatchesCpuTwin) {
  DYT_REQUIRE_GPU();
  const uint64_t seed = test::TestSeed();
  CheckCase({1, 4096, 2, 1, 128}, /*fused=*/true, /*chain=*/true, /*bwd_runs=*/2, seed);
  CheckCase({1, 4096, 2, 2, 64}, /*fused=*/false, /*chain=*/false, /*bwd_runs=*/1, seed + 1);
}

// Argument checks happen before any CUDA call, so this runs without a GPU too.
TEST(AttentionArgsTest, RejectsBadArgumentsWithoutLaunching) {
  bf16* p = reinterpret_cast<bf16*>(uintptr_t{256});
  float* f = reinterpret_cast<float*>(uintptr_t{256});
  const AttentionShape good{2, 100, 8, 2, 64, 8 * 64, 2 * 64, 8 * 64};
  const size_t scratch = FlashAttentionBackwardScratchBytes(good);
  EXPECT_GE(scratch, size_t{2} * 8 * 100 * sizeof(float));
  EXPECT_EQ(scratch % 16, 0u);

  auto fwd = [&](const AttentionShape& s, bf16* out = nullptr, const bf16* q = nullptr) {
    return FlashAttentionForward(out ? out : p, f, q ? q : p, p, p, s, nullptr);
  };
  auto bwd = [&](const AttentionShape& s, int64_t ld_dq, int64_t ld_dkv, size_t scratch_bytes) {
    return FlashAttentionBackward(p, p, p, ld_dq, ld_dkv, p, p, f, p, p, p, s, f, scratch_bytes,
                                  nullptr);
  };
  auto expect_invalid = [](const Status& st, const char* needle) {
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find(needle), std::string::npos)
        << "message should name '" << needle << "': " << st.ToString();
  };

  AttentionShape s = good;
  s.head_dim = 96;
  s.ld_q = 8 * 96;
  s.ld_kv = 2 * 96;
  s.ld_o = 8 * 96;
  expect_invalid(fwd(s), "head_dim");
  s = good;
  s.n_kv_heads = 3;
  expect_invalid(fwd(s), "n_heads");
  s = good;
  s.n_kv_heads = 0;
  expect_invalid(fwd(s), "n_heads");
  s = good;
  s.B = 0;
  expect_invalid(fwd(s), "B=");
  s = good;
  s.T = 0;
  expect_invalid(fwd(s), "T=");
  s = good;
  s.ld_q = 8 * 64 + 4;  // not a multiple of 8
  expect_invalid(fwd(s), "ld_q");
  s = good;
  s.ld_kv = 64;  // narrower than the two kv heads
  expect_invalid(fwd(s), "ld_kv");
  s = good;
  s.ld_o = 8 * 64 - 8;
  expect_invalid(fwd(s), "ld_o");
  expect_invalid(fwd(good, p + 1), "out");  // 2 bytes off: not 16-byte aligned
  expect_invalid(fwd(good, nullptr, p + 4), "q");
  expect_invalid(FlashAttentionForward(p, nullptr, p, p, p, good, nullptr), "lse");

  expect_invalid(bwd(good, 8 * 64 + 2, 2 * 64, scratch), "ld_dq");
  expect_invalid(bwd(good, 8 * 64, 64, scratch), "ld_dkv");
  expect_invalid(bwd(good, 8 * 64, 2 * 64, scratch - 4), "scratch");
  // The one-pass mode also needs the fp32 dq accumulator: B * T * n_heads * head_dim floats.
  const size_t atomic_scratch =
      FlashAttentionBackwardScratchBytes(good, AttentionBackwardMode::kAtomicDq);
  EXPECT_GE(atomic_scratch, scratch + size_t{2} * 100 * 8 * 64 * sizeof(float));
  expect_invalid(FlashAttentionBackward(p, p, p, 8 * 64, 2 * 64, p, p, f, p, p, p, good, f, scratch,
                                        nullptr, AttentionBackwardMode::kAtomicDq),
                 "scratch");
  expect_invalid(FlashAttentionBackward(p, p, p, 8 * 64, 2 * 64, p, p, f, p, p, p, good, nullptr,
                                        scratch, nullptr),
                 "scratch");
  expect_invalid(FlashAttentionBackward(p, p + 8, p + 3, 8 * 64, 2 * 64, p, p, f, p, p, p, good, f,
                                        scratch, nullptr),
                 "dv");
  s = good;
  s.head_dim = 32;
  expect_invalid(bwd(s, 8 * 64, 2 * 64, scratch), "head_dim");
  // RoPE tables: both or neither, 16-byte aligned.
  auto bwd_rope = [&](RopeTables rope) {
    return FlashAttentionBackward(p, p, p, 8 * 64, 2 * 64, p, p, f, p, p, p, good, f, scratch,
                                  nullptr, AttentionBackwardMode::kDeterministic, rope);
  };
  expect_invalid(bwd_rope({f, nullptr}), "rope.cos and rope.sin");
  expect_invalid(bwd_rope({f + 1, f}), "rope.cos");
  expect_invalid(bwd_rope({f, f + 2}), "rope.sin");
}

}  // namespace
}  // namespace dyt::cuda
