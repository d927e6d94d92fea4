// Fragment index math of the flash-attention kernels (internal to trainer/cuda), host- and
// device-callable so tests/cuda/attention_fragments_test.cc can check it on the CPU against
// the PTX ISA's tables (an emulated ldmatrix and mma.m16n8k16) without a GPU.
//
// PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type", with g = laneid >> 2
// and t = laneid % 4:
//   A (16 x 16): reg 0 = row g, cols 2t, 2t+1; reg 1 = row g+8, same cols; reg 2 = row g,
//                cols 2t+8, 2t+9; reg 3 = row g+8, cols 2t+8, 2t+9 (low half = lower column).
//   B (16 x 8, B[k][n]): reg 0 = k 2t, 2t+1 of column n = g; reg 1 = k 2t+8, 2t+9.
//   C / D (16 x 8 fp32): c0, c1 = row g, cols 2t, 2t+1; c2, c3 = row g+8, same cols.
// PTX ISA, "Warp-level matrix load instruction: ldmatrix" (.x4): lanes 8i .. 8i+7 give the
// row addresses of 8 x 8 matrix i, which lands in register i; a lane receives row laneid/4,
// columns 2(laneid%4), +1 of each matrix (with .trans: column laneid/4, rows 2(laneid%4), +1).
#pragma once

#if defined(__CUDACC__)
#define DYT_ATTN_HD __host__ __device__ __forceinline__
#else
#define DYT_ATTN_HD inline
#endif

namespace dyt::cuda::attn {

// The element offset lane `lane` passes to ldmatrix.x4 (no .trans) to load the A fragment of
// the 16 x 16 block at (row0, k0) of a row-major tile with row stride ld: matrices (rows
// 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = A regs 0..3.
DYT_ATTN_HD int LdmOffsetA(int lane, int row0, int k0, int ld) {
  return (row0 + (lane & 15)) * ld + k0 + (lane >> 4) * 8;
}

// B fragments when B[k][n] = M[n][k] (M row-major in n: K for Q K^T, Q for K Q^T), ldmatrix.x4
// without .trans: regs {0, 1} = B of n-tile [n0, n0+8), regs {2, 3} = B of [n0+8, n0+16), both
// over k in [k0, k0+16). Matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15,
// k 8-15).
DYT_ATTN_HD int LdmOffsetBRows(int lane, int n0, int k0, int ld) {
  return (n0 + (lane & 7) + ((lane >> 4) & 1) * 8) * ld + k0 + ((lane >> 3) & 1) * 8;
}

// B fragments when B[k][n] = M[k][n] (M row-major in k: V for P V, dO for P^T dO, K for dS K),
// ldmatrix.x4.trans: regs {0, 1} = B of n-tile [n0, n0+8), regs {2, 3} = B of [n0+8, n0+16),
// over k in [k0, k0+16). Matrices: (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15),
// (k 8-15, n 8-15).
DYT_ATTN_HD int LdmOffsetBTrans(int lane, int k0, int n0, int ld) {
  return (k0 + (lane & 15)) * ld + n0 + (lane >> 4) * 8;
}

// The A fragment of the 16 x 16 block at (row0, k0) when A[r][k] = M[k][r] (M row-major in k:
// dS^T staged key-major in shared memory for dQ = dS K), ldmatrix.x4.trans: matrices (rows
// 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = A regs 0..3,
// each addressed by its 8 k-rows of M.
DYT_ATTN_HD int LdmOffsetATrans(int lane, int row0, int k0, int ld) {
  return (k0 + (lane & 7) + ((lane >> 4) & 1) * 8) * ld + row0 + ((lane >> 3) & 1) * 8;
}

// The C -> A identity: the accumulators c0 (columns 0-7) and c1 (columns 8-15) of a 16 x 16
// block give its A fragment with register r = the pair (tile AccTile(r), elements
// AccElem(r), AccElem(r) + 1): {c0[0], c0[1]}, {c0[2], c0[3]}, {c1[0], c1[1]}, {c1[2], c1[3]}.
DYT_ATTN_HD constexpr int AccTile(int r) { return r >> 1; }
DYT_ATTN_HD constexpr int AccElem(int r) { return (r & 1) * 2; }

}  // namespace dyt::cuda::attn
