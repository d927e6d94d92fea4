// The flash-attention kernels' fragment index math (trainer/cuda/attention_fragments.h) on the
// CPU: ldmatrix.x4 (with and without .trans) and mma.m16n8k16 emulated from the PTX ISA's
// tables, fed with the lane offsets the kernels use, must compute the products the kernels
// need (Q K^T with K as B, P V with V as B through .trans, P straight from the accumulators as
// A). Also: every ldmatrix row address is 16-byte aligned and the padded shared rows make each
// 8-row matrix conflict-free. Runs without a GPU.
#include "trainer/cuda/attention_fragments.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace dyt::cuda::attn {
namespace {

using Reg = std::array<std::array<float, 2>, 32>;  // one .b32 register (2 elements) per lane
using Frag = std::array<Reg, 4>;                   // ldmatrix.x4 result / A fragment
using Acc = std::array<std::array<float, 4>, 32>;  // an m16n8 fp32 accumulator per lane

// ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16: lanes 8i..8i+7 address the rows of
// matrix i (8 consecutive elements each); register i of lane l holds row l/4, columns
// 2(l%4), +1 of matrix i, or with .trans column l/4, rows 2(l%4), +1.
Frag LdMatrix(const std::vector<float>& smem, const std::array<int, 32>& offset, bool trans) {
  Frag r{};
  for (int i = 0; i < 4; ++i) {
    float m[8][8];
    for (int j = 0; j < 8; ++j) {
      for (int c = 0; c < 8; ++c) m[j][c] = smem.at(offset[8 * i + j] + c);
    }
    for (int l = 0; l < 32; ++l) {
      const int a = l / 4, b = 2 * (l % 4);
      r[i][l] = trans ? std::array<float, 2>{m[b][a], m[b + 1][a]}
                      : std::array<float, 2>{m[a][b], m[a][b + 1]};
    }
  }
  return r;
}

// mma.m16n8k16 per "Matrix Fragments for mma.m16n8k16 with floating point type".
void Mma(Acc& d, const Frag& a, const Reg& b0, const Reg& b1) {
  double A[16][16] = {}, B[16][8] = {}, C[16][8] = {};
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l % 4;
    for (int i = 0; i < 8; ++i) {  // a0..a7, two per register
      const int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
      const int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      A[row][col] = a[i / 2][l][i % 2];
    }
    for (int i = 0; i < 4; ++i) {  // b0..b3
      const int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
      B[row][g] = (i < 2 ? b0 : b1)[l][i % 2];
    }
    for (int i = 0; i < 4; ++i) C[i < 2 ? g : g + 8][t * 2 + (i & 1)] = d[l][i];
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l % 4;
    for (int i = 0; i < 4; ++i) {
      const int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
      double acc = C[row][col];
      for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
      d[l][i] = static_cast<float>(acc);
    }
  }
}

// Element (row, col) of a 16 x 8 accumulator: lane and register.
float AccAt(const Acc& c, int row, int col) {
  const int lane = (row % 8) * 4 + (col / 2);
  return c[lane][(row >= 8 ? 2 : 0) + (col & 1)];
}

// A smem tile [rows][ld] of small integers (exact in fp32 and bf16 products).
std::vector<float> RandomTile(std::mt19937& rng, int rows, int ld) {
  std::uniform_int_distribution<int> d(-8, 8);
  std::vector<float> s(static_cast<size_t>(rows) * ld);
  for (float& f : s) f = static_cast<float>(d(rng));
  return s;
}

template <typename F>
std::array<int, 32> Offsets(F f) {
  std::array<int, 32> o;
  for (int l = 0; l < 32; ++l) o[l] = f(l);
  return o;
}

// Alignment and bank conflicts of one ldmatrix.x4 (bf16 elements, 2 bytes): each lane's row is
// 16 bytes and 16-byte aligned, and the 8 rows of each matrix fall in 8 distinct 16-byte
// groups of the 128-byte bank window.
void ExpectAlignedConflictFree(const std::array<int, 32>& offset) {
  for (int i = 0; i < 4; ++i) {
    std::set<int> groups;
    for (int j = 0; j < 8; ++j) {
      const int bytes = offset[8 * i + j] * 2;
      EXPECT_EQ(bytes % 16, 0) << "lane " << 8 * i + j;
      groups.insert((bytes / 16) % 8);
    }
    EXPECT_EQ(groups.size(), 8u) << "matrix " << i << " has a bank conflict";
  }
}

// S = Q K^T for one 16 x 16 block of S, k = head_dim chunk: A = Q rows by LdmOffsetA, B = K
// rows by LdmOffsetBRows (two n-tiles per ldmatrix.x4).
TEST(AttentionFragmentsTest, QKTransposedProduct) {
  for (int hd : {64, 128}) {
    const int ld = hd + 8;  // the kernels' padded row stride
    std::mt19937 rng(hd);
    const std::vector<float> q = RandomTile(rng, 64, ld), k = RandomTile(rng, 64, ld);
    const int row0 = 16, n0 = 32;  // a warp's query rows, a key pair
    Acc s0{}, s1{};
    for (int k0 = 0; k0 < hd; k0 += 16) {
      const auto oa = Offsets([&](int l) { return LdmOffsetA(l, row0, k0, ld); });
      const auto ob = Offsets([&](int l) { return LdmOffsetBRows(l, n0, k0, ld); });
      ExpectAlignedConflictFree(oa);
      ExpectAlignedConflictFree(ob);
      const Frag a = LdMatrix(q, oa, false), b = LdMatrix(k, ob, false);
      Mma(s0, a, b[0], b[1]);
      Mma(s1, a, b[2], b[3]);
    }
    for (int r = 0; r < 16; ++r) {
      for (int c = 0; c < 16; ++c) {
        double want = 0;
        for (int d = 0; d < hd; ++d) want += q[(row0 + r) * ld + d] * k[(n0 + c) * ld + d];
        EXPECT_EQ(AccAt(c < 8 ? s0 : s1, r, c % 8), want)
            << "hd " << hd << " S[" << r << "][" << c << "]";
      }
    }
  }
}

// O = P V over one 16-key chunk: A = P from the accumulators (AccTile / AccElem), B = V rows
// by LdmOffsetBTrans with .trans (two head-dim n-tiles per ldmatrix.x4).
TEST(AttentionFragmentsTest, AccumulatorAsATimesTransposedLoad) {
  const int hd = 64, ld = hd + 8;
  std::mt19937 rng(7);
  const std::vector<float> v = RandomTile(rng, 64, ld);
  // P (16 x 16) as the two accumulator tiles a previous mma would leave.
  std::uniform_int_distribution<int> d(-8, 8);
  float p[16][16];
  Acc c0{}, c1{};
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 16; ++c) {
      p[r][c] = static_cast<float>(d(rng));
      Acc& t = c < 8 ? c0 : c1;
      const int lane = (r % 8) * 4 + (c % 8) / 2;
      t[lane][(r >= 8 ? 2 : 0) + (c & 1)] = p[r][c];
    }
  }
  Frag a{};
  for (int l = 0; l < 32; ++l) {
    for (int reg = 0; reg < 4; ++reg) {
      const Acc& t = AccTile(reg) == 0 ? c0 : c1;
      a[reg][l] = {t[l][AccElem(reg)], t[l][AccElem(reg) + 1]};
    }
  }
  const int k0 = 32, n0 = 16;  // keys [32, 48), head-dim columns [16, 32)
  const auto ob = Offsets([&](int l) { return LdmOffsetBTrans(l, k0, n0, ld); });
  ExpectAlignedConflictFree(ob);
  const Frag b = LdMatrix(v, ob, true);
  Acc o0{}, o1{};
  Mma(o0, a, b[0], b[1]);
  Mma(o1, a, b[2], b[3]);
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 16; ++c) {
      double want = 0;
      for (int j = 0; j < 16; ++j) want += p[r][j] * v[(k0 + j) * ld + n0 + c];
      EXPECT_EQ(AccAt(c < 8 ? o0 : o1, r, c % 8), want) << "O[" << r << "][" << c << "]";
    }
  }
}

// dQ = dS K over one 16-key chunk with dS^T staged key-major in shared memory ([key][query],
// the fused-dq backward's layout, row stride kBq + 8): A = dS by LdmOffsetATrans with .trans,
// B = K rows by LdmOffsetBTrans with .trans. Both query-tile widths the kernel uses.
TEST(AttentionFragmentsTest, TransposedStagedA) {
  for (int bq : {64, 32}) {
    const int ld_s = bq + 8, hd = 128, ld_k = hd + 8;
    std::mt19937 rng(bq);
    const std::vector<float> dst = RandomTile(rng, 64, ld_s);  // dS^T: 64 keys x bq queries
    const std::vector<float> k = RandomTile(rng, 64, ld_k);
    const int row0 = bq - 16, n0 = 48;  // the last 16 queries; head-dim columns [48, 64)
    Acc o0{}, o1{};
    for (int k0 = 0; k0 < 64; k0 += 16) {
      const auto oa = Offsets([&](int l) { return LdmOffsetATrans(l, row0, k0, ld_s); });
      const auto ob = Offsets([&](int l) { return LdmOffsetBTrans(l, k0, n0, ld_k); });
      ExpectAlignedConflictFree(oa);
      ExpectAlignedConflictFree(ob);
      const Frag a = LdMatrix(dst, oa, true), b = LdMatrix(k, ob, true);
      Mma(o0, a, b[0], b[1]);
      Mma(o1, a, b[2], b[3]);
    }
    for (int r = 0; r < 16; ++r) {
      for (int c = 0; c < 16; ++c) {
        double want = 0;
        for (int j = 0; j < 64; ++j) want += dst[j * ld_s + row0 + r] * k[j * ld_k + n0 + c];
        EXPECT_EQ(AccAt(c < 8 ? o0 : o1, r, c % 8), want)
            << "bq " << bq << " dQ[" << r << "][" << c << "]";
      }
    }
  }
}

// A row stride without the padding (hd elements, a multiple of 128 bytes) puts all 8 rows of
// a matrix in one bank group: the check above would catch a lost pad.
TEST(AttentionFragmentsTest, UnpaddedRowsWouldConflict) {
  const auto o = Offsets([](int l) { return LdmOffsetA(l, 0, 0, 64); });
  std::set<int> groups;
  for (int j = 0; j < 8; ++j) groups.insert((o[j] * 2 / 16) % 8);
  EXPECT_EQ(groups.size(), 1u);
}

}  // namespace
}  // namespace dyt::cuda::attn
