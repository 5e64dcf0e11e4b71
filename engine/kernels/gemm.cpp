// SGEMM, row-major: C = alpha * op(A) * op(B) + beta * C.
//
// Goto/BLIS structure (Goto & van de Geijn, TOMS 2008): five loops around a
// register-tiled micro-kernel.
//
//   for jc in N step NC:                       B block  KC x NC  (L2)
//     for pc in K step KC:   pack B -> Bp      shared by all threads
//       for ic in M step MC: (pack A^T -> Ap)  per thread          (L2)
//         for jr in NC step NR:                B micro-panel KC x NR (L1/L2)
//           for ir in MC step MR:  micro_kernel(A[ir], Bp[jr]) -> C[MR x NR]
//
// Threads split the (ic block x jr range) work units of each (jc, pc) step;
// B is packed cooperatively first. What does not pay for packing is read in
// place: an untransposed A always, an untransposed B when M is small; and a
// few rows (decoder steps, GEMV) or a few columns go through the dot/axpy
// paths at the bottom.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/row_moments.h"
#include "engine/kernels/transpose.h"
#include "engine/memory.h"
#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

// ---- blocking ---------------------------------------------------------------
// Micro-tile MR x NR with NR = NV vectors: MR*NV accumulators + NV B vectors +
// 1 broadcast must fit the register file (32 zmm with AVX-512, 16 otherwise),
// and MR*NV >= 8 covers FMA latency (4) x pipes (2).
// AVX-512: 6 x 64, i.e. 24 accumulators fed per k by 4 B loads + 6 broadcasts.
// Measured here it beat 12 x 32 (2 loads + 12 broadcasts) by ~10% on
// cache-resident sizes (194 vs 176 GFLOP/s at 256^3). The B micro-panel
// (KC x 64 floats) is larger than L1, but its one sequential stream is served
// from L2; a long KC means fewer passes over C (each pass reads and writes
// every C tile once): 512 beat 256 by ~5% on 2048^3 and 8192x2048x512, and
// longer KCs gained nothing clear while growing the B pack buffer.
constexpr int MR = 6;
constexpr int NV = W >= 16 ? 4 : 2;
constexpr int NR = NV * W;
constexpr int64_t KC = 512;
constexpr int64_t MC = 192;   // A block MC x KC: 384 KiB, inside the 2 MiB L2
// B block KC x NC = 768 KiB: with the A block it stays in the 2 MiB L2, so
// every ic block re-reads the B panels from L2, not L3. Measured once A was
// read in place: NC = 384 vs 4096 took 2048^3 from 181 to 192 GFLOP/s and
// 8192x2048x512 from 176 to 196 (best of 3), and smaller shapes held.
constexpr int64_t NC = 384;

// ---- per-thread pack buffers ---------------------------------------------------
// Kept for the life of the thread (allocation and page faults per call would
// cost more than small GEMMs themselves).
struct PackBuffer {
  float* p = nullptr;
  size_t cap = 0;
  float* get(size_t n) {
    if (n > cap) {
      free_aligned(p);
      cap = (n + 15) / 16 * 16;
      p = static_cast<float*>(alloc_aligned(cap * sizeof(float)));
    }
    return p;
  }
  ~PackBuffer() { free_aligned(p); }
};
thread_local PackBuffer tl_apack, tl_bpack;

// ---- packing -----------------------------------------------------------------
// Bp micro-panel layout: for each k, NR consecutive columns; zero-padded past N
// so the micro-kernel never branches on edges in its inner loop.
// B is op(B): b(k, j) = tb ? B[j*ldb + k] : B[k*ldb + j].
void pack_b_panel(bool tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                  int64_t nr, float* dst) {
  if (!tb) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (k0 + k) * ldb + j0;
      float* d = dst + k * NR;
      std::memcpy(d, src, nr * sizeof(float));
      std::fill(d + nr, d + NR, 0.f);
    }
  } else {
    // Rows of B are columns of the panel: the [nr, kc] block of B transposed
    // into the panel's [kc, NR] rows (every Linear multiplies by W^T; as an
    // element loop this pack was 20% of a seq2seq step, and still a fifth of
    // a batch-64 decoder step's time in 16-wide tiles of scalar copies).
    transpose_block(B + j0 * ldb + k0, ldb, nr, kc, dst, NR);
    if (nr < NR)
      for (int64_t k = 0; k < kc; ++k) std::fill(dst + k * NR + nr, dst + (k + 1) * NR, 0.f);
  }
}

// Ap micro-panel layout: for each k, MR consecutive rows; zero-padded past M.
// Only a transposed A is packed (a(i, k) = A[k*lda + i]: each k is a
// contiguous run of rows); an untransposed A is read in place by the kernel.
// The whole mc x kc block is packed at once, in tiles of 16 k: the tile's 16
// source row segments (mc floats each, contiguous) are read once while they
// sit in L1, and each panel gets 16 x MR consecutive floats. Packing one MR
// panel at a time instead read kc rows lda apart per panel: with lda a
// multiple of 1024 floats every row maps to the same cache sets, and the
// weight-gradient GEMMs (K = B*T, lda = out_features) ran at 134-150 GFLOP/s.
void pack_at_block(const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                   float* dst) {
  constexpr int64_t kTile = 16;
  for (int64_t kb = 0; kb < kc; kb += kTile) {
    const int64_t ke = std::min(kc, kb + kTile);
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t mr = std::min<int64_t>(MR, mc - ir);
      float* d = dst + ir * kc;
      if (mr == MR) {
        for (int64_t k = kb; k < ke; ++k) {
          // a constant-size copy: inlined as two moves (a loop over MR
          // compiled to element inserts, and this pack took 19% of a dW GEMM)
          std::memcpy(d + k * MR, A + (k0 + k) * lda + i0 + ir, MR * sizeof(float));
        }
      } else {
        for (int64_t k = kb; k < ke; ++k) {
          const float* src = A + (k0 + k) * lda + i0 + ir;
          for (int64_t i = 0; i < MR; ++i) d[k * MR + i] = i < mr ? src[i] : 0.f;
        }
      }
    }
  }
}

// sums[i] (+)= sum_k a(i, k) over a packed block (pack_at_block's layout);
// the first K block stores, later ones add.
// A panel is kc runs of MR floats: summed as flat vectors of L = 3 * 16
// floats (a multiple of MR = 6 and of the vector width), lane q of the total
// belonging to row q % MR.
void add_packed_row_sums(const float* ap, int64_t mc, int64_t kc, bool first, float* sums) {
  constexpr int64_t L = 48;
  static_assert(L % MR == 0 && L % W == 0, "L must hold whole k-runs and whole vectors");
  constexpr int NL = int(L / W);
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const float* d = ap + ir * kc;
    const int64_t n = kc * MR;
    VF acc[NL];
    for (int v = 0; v < NL; ++v) acc[v] = VF(0.f);
    int64_t j = 0;
    for (; j + L <= n; j += L)
#pragma GCC unroll 3
      for (int v = 0; v < NL; ++v) acc[v] += VF::load_unaligned(d + j + v * W);
    alignas(64) float t[L];
    for (int v = 0; v < NL; ++v) acc[v].store_aligned(t + v * W);
    float s[MR] = {};
    for (int64_t q = 0; q < L; ++q) s[q % MR] += t[q];
    for (; j < n; ++j) s[j % MR] += d[j];
    const int64_t mr = std::min<int64_t>(MR, mc - ir);
    for (int64_t i = 0; i < mr; ++i) sums[ir + i] = first ? s[i] : sums[ir + i] + s[i];
  }
}

// Row sums of op(A) for the paths that do not pack A: rows of A are
// contiguous (or, transposed, columns are: a sum over rows of A).
void plain_row_sums(bool ta, int64_t M, int64_t K, const float* A, int64_t lda, float* sums) {
  if (!ta) {
    for (int64_t i = 0; i < M; ++i) sums[i] = rows::sum(A + i * lda, K);
    return;
  }
  std::fill(sums, sums + M, 0.f);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < M; ++i) sums[i] += A[k * lda + i];
}

// C's epilogue, as BLAS defines it: alpha * v + beta * c, where beta == 0
// means C is not read at all (it may hold NaN).
inline float blend(float v, float c, float alpha, float beta) {
  return alpha * v + (beta != 0.f ? beta * c : 0.f);
}

// The epilogue of one element (i, j relative to the biases' offsets).
inline float finish(float v, const GemmEpilogue& e, int64_t i, int64_t j) {
  if (e.add) v += e.add[i * e.ld_add + j];
  if (e.row_bias) v += e.row_bias[i];
  if (e.col_bias) v += e.col_bias[j];
  if (e.relu && v < 0.f) v = 0.f;
  return e.gate && !(e.gate[i * e.ldg + j] > 0.f) ? 0.f : v;
}

// ---- micro-kernel ------------------------------------------------------------
// Contract: C[0:mr, 0:nr] = act(alpha * a[MR x kc] * b[kc x NR] + beta * C + bias), where
//   b: NR floats per k, consecutive k rows `bs` floats apart (bs = NR for a
//      packed micro-panel; ldb when B is read in place, full panels only),
//   a: packed micro-panel (MR floats per k) when kPackedA, else rows of A read
//      in place: a(i, k) = a[i*lda + k] (rows >= mr are clamped to row mr-1:
//      read but discarded, so nothing out of bounds is touched);
//   beta == 0: C is not read (it may hold NaN),
//   e: this tile's share of the epilogue (biases offset to the tile's first
//      row / column, the addend and the gate to the tile's first element;
//      null biases and addend, no gate and relu = false on all but the K
//      blocks where they apply).
// The kMR x NR accumulator tile lives in registers for the whole k loop.
// kNV <= NV: the vectors of the tile computed (a ragged last panel of nr <=
// kNV*W columns runs only those: N = 784, a 28x28 image, ends in a 16-column
// panel, where a full 64-wide tile would multiply 48 columns of padding).
// kMR <= MR likewise: the rows computed (mr <= kMR; a packed a keeps its
// MR-float stride per k).
template <bool kPackedA, int kNV = NV, int kMR = MR>
__attribute__((always_inline)) inline void micro_kernel(int64_t kc, const float* __restrict a,
                                                        int64_t lda, const float* __restrict b,
                                                        int64_t bs, float* c, int64_t ldc, int mr,
                                                        int nr, float alpha, float beta,
                                                        const GemmEpilogue& e) {
  VF acc[kMR][kNV];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v] = VF(0.f);

  // Prefetch the C tile for writing now, so its lines (often in L3: each C
  // tile is revisited once per KC block) arrive during the k loop instead of
  // stalling the stores at the end. One prefetch per 64-byte line.
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < kNV * W; j += 16) __builtin_prefetch(c + std::min(i, mr - 1) * ldc + j, 1, 3);

  const float* row[kMR];
  if constexpr (!kPackedA)
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) row[i] = a + std::min(i, mr - 1) * lda;

  for (int64_t k = 0; k < kc; ++k) {
    // The B micro-panel streams from L2 (it is larger than L1): ask for its
    // rows 8 k-steps ahead. Measured: 1024^3 173 -> 186 GFLOP/s, 64x1024x256
    // 193 -> 200 (best of 3); 16 ahead was too far for the small shapes.
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) __builtin_prefetch(b + 8 * bs + v * W, 0, 3);
    VF bv[kNV];
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) bv[v] = VF::load_unaligned(b + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const VF ai(kPackedA ? a[i] : row[i][k]);
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
    }
    b += bs;
    if constexpr (kPackedA) a += MR;
  }

  const VF va(alpha);
  if (mr == kMR && nr == kNV * W) {
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) {
        float* p = c + i * ldc + v * W;
        VF r = acc[i][v] * va;
        if (beta != 0.f) r = xsimd::fma(VF(beta), VF::load_unaligned(p), r);
        if (e.add) r += VF::load_unaligned(e.add + i * e.ld_add + v * W);
        if (e.col_bias) r += VF::load_unaligned(e.col_bias + v * W);
        if (e.row_bias) r += VF(e.row_bias[i]);
        if (e.relu) r = xsimd::max(r, VF(0.f));
        if (e.gate)
          r = xsimd::select(VF::load_unaligned(e.gate + i * e.ldg + v * W) > VF(0.f), r, VF(0.f));
        r.store_unaligned(p);
      }
    return;
  }
  alignas(64) float tile[kMR * NR];  // row stride NR, first kNV*W columns used
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v].store_aligned(tile + i * NR + v * W);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float& cij = c[i * ldc + j];
      cij = finish(blend(tile[i * NR + j], cij, alpha, beta), e, i, j);
    }
}

// The micro-kernel of mr rows: a full tile, or a ragged last row block with
// only the rows it needs rounded up to even. A decoder's per-step GEMMs have
// M = 64 rows (10 tiles + 4 rows), or 32 per thread at two threads (5 + 2),
// where the 6-row tile multiplied 12.5% padding rows.
template <bool kPackedA, int kNV>
inline void micro_kernel_mr(int64_t kc, const float* a, int64_t lda, const float* b, int64_t bs,
                            float* c, int64_t ldc, int mr, int nr, float alpha, float beta,
                            const GemmEpilogue& e) {
  if constexpr (MR == 6) {
    if (mr <= 2)
      return micro_kernel<kPackedA, kNV, 2>(kc, a, lda, b, bs, c, ldc, mr, nr, alpha, beta, e);
    if (mr <= 4)
      return micro_kernel<kPackedA, kNV, 4>(kc, a, lda, b, bs, c, ldc, mr, nr, alpha, beta, e);
  }
  micro_kernel<kPackedA, kNV>(kc, a, lda, b, bs, c, ldc, mr, nr, alpha, beta, e);
}

// The micro-kernel of nv vectors: a full panel (nv = NV) or a ragged last
// one with only the vectors it needs.
template <bool kPackedA>
inline void micro_kernel_nv(int nv, int64_t kc, const float* a, int64_t lda, const float* b,
                            int64_t bs, float* c, int64_t ldc, int mr, int nr, float alpha,
                            float beta, const GemmEpilogue& e) {
  if constexpr (NV == 4) {
    if (nv == 3)
      return micro_kernel_mr<kPackedA, 3>(kc, a, lda, b, bs, c, ldc, mr, nr, alpha, beta, e);
    if (nv == 2)
      return micro_kernel_mr<kPackedA, 2>(kc, a, lda, b, bs, c, ldc, mr, nr, alpha, beta, e);
    if (nv == 1)
      return micro_kernel_mr<kPackedA, 1>(kc, a, lda, b, bs, c, ldc, mr, nr, alpha, beta, e);
  }
  micro_kernel_mr<kPackedA, NV>(kc, a, lda, b, bs, c, ldc, mr, nr, alpha, beta, e);
}

// ---- the blocked driver --------------------------------------------------------

struct Problem {
  bool ta, tb;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  GemmEpilogue ep;
  const PackedB* pre = nullptr;  // op(B) packed already (then B's panels are never packed here)
};

// One work unit: rows [i0, i0+mc) of C against B micro-panels [p0, p1) of the
// current packed B block (columns jc + p*NR ...).
void run_unit(const Problem& P, bool pack_a, bool pack_b, int64_t i0, int64_t mc, int64_t p0,
              int64_t p1, int64_t jc, int64_t nc, int64_t pc, int64_t kc, const float* bp,
              float beta) {
  const float* ap = nullptr;
  if (pack_a) {
    float* buf = tl_apack.get(size_t((mc + MR - 1) / MR * MR * kc));
    pack_at_block(P.A, P.lda, i0, mc, pc, kc, buf);
    ap = buf;
    // Row sums of op(A) from the packed block (hot in L1/L2), counted once:
    // by the first column block's unit that holds the first B panel.
    if (P.ep.row_sums && jc == 0 && p0 == 0)
      add_packed_row_sums(buf, mc, kc, pc == 0, P.ep.row_sums + i0);
  }
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t jr = p * NR;
    const int nr = int(std::min<int64_t>(NR, nc - jr));
    // A full panel of an untransposed B can be read in place (row stride ldb);
    // otherwise the packed copy (ragged tail panels are always packed).
    const bool in_place = !pack_b && nr == NR;
    const float* bpanel = in_place ? P.B + pc * P.ldb + jc + jr : bp + p * NR * kc;
    const int64_t bs = in_place ? P.ldb : NR;
    float* cblk = P.C + i0 * P.ldc + jc + jr;
    // Biases and the addend are added in the first K block (later ones
    // accumulate onto it), relu and the gate applied in the last.
    GemmEpilogue e;
    if (pc == 0 && P.ep.col_bias) e.col_bias = P.ep.col_bias + jc + jr;
    const bool last_k = pc + kc == P.K;
    e.relu = P.ep.relu && last_k;
    e.ldg = P.ep.ldg;
    e.ld_add = P.ep.ld_add;
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int mr = int(std::min<int64_t>(MR, mc - ir));
      float* c = cblk + ir * P.ldc;
      if (pc == 0 && P.ep.row_bias) e.row_bias = P.ep.row_bias + i0 + ir;
      if (pc == 0 && P.ep.add) e.add = P.ep.add + (i0 + ir) * P.ep.ld_add + jc + jr;
      if (last_k && P.ep.gate) e.gate = P.ep.gate + (i0 + ir) * P.ep.ldg + jc + jr;
      const float* a = pack_a ? ap + ir * kc : P.A + (i0 + ir) * P.lda + pc;
      const int64_t lda = pack_a ? 0 : P.lda;
      const int nv = (nr + W - 1) / W;
      if (pack_a)
        micro_kernel_nv<true>(nv, kc, a, lda, bpanel, bs, c, P.ldc, mr, nr, P.alpha, beta, e);
      else
        micro_kernel_nv<false>(nv, kc, a, lda, bpanel, bs, c, P.ldc, mr, nr, P.alpha, beta, e);
    }
  }
}

void gemm_blocked(const Problem& P, int nt) {
  // An untransposed A is read in place: its MR rows are MR sequential streams
  // the prefetchers follow, and the A block stays in L2 across the B panels.
  // Packing it (a strided gather) measured slower: ~9% of the time at 1024^3
  // went to the gather, and reading in place took 512^3 from 163 to 193 GFLOP/s.
  const bool pack_a = P.ta;
  // Likewise B: each packed B panel serves M/MR micro-kernels. With few rows
  // packing it is a full extra pass over B (a 1 MiB operand for 64x1024x256)
  // for little reuse, so an untransposed B is then read in place. (Rows a
  // multiple of 4 KiB apart can make an in-place panel's k-rows share one L1
  // set: an LSTM's W_hh^T, 32x2048x512, ran at 85 GFLOP/s in place against
  // 115 packed; but 64x1024x256 lost as much the other way. A B applied many
  // times is best packed once: PackedB.)
  const bool pack_b = P.tb || P.M > 16 * MR || P.pre;

  // Balance the ic blocks over the threads: a multiple of nt blocks of
  // near-equal height (a multiple of MR).
  int64_t n_ic = (P.M + MC - 1) / MC;
  if (n_ic > 1 && n_ic % nt) n_ic += nt - n_ic % nt;
  int64_t mc_eff = ((P.M + n_ic - 1) / n_ic + MR - 1) / MR * MR;
  n_ic = (P.M + mc_eff - 1) / mc_eff;

  const int64_t nc_max = std::min<int64_t>(NC, (P.N + NR - 1) / NR * NR);
  const int64_t kc_max = std::min<int64_t>(KC, P.K);
  float* const buf = P.pre ? nullptr : tl_bpack.get(size_t(nc_max * kc_max));
  const int64_t n_pc = (P.K + KC - 1) / KC;

#pragma omp parallel num_threads(nt) if (nt > 1)
  for (int64_t jc = 0; jc < P.N; jc += NC) {
    const int64_t nc = std::min<int64_t>(NC, P.N - jc);
    const int64_t n_panels = (nc + NR - 1) / NR;
    // Too few ic blocks to feed every thread: also split the B panels.
    const int64_t n_chunks = std::min<int64_t>(n_panels, std::max<int64_t>(1, (nt + n_ic - 1) / n_ic));
    for (int64_t pc = 0; pc < P.K; pc += KC) {
      const int64_t kc = std::min<int64_t>(KC, P.K - pc);
      const float beta = pc == 0 ? P.beta : 1.f;
      const float* bp = buf;
      if (P.pre) {
        bp = P.pre->panels + P.pre->offsets[size_t(jc / NC * n_pc + pc / KC)];
      } else {
#pragma omp for schedule(static)
        for (int64_t p = 0; p < n_panels; ++p)
          if (pack_b || (p + 1) * NR > nc)
            pack_b_panel(P.tb, P.B, P.ldb, pc, kc, jc + p * NR,
                         std::min<int64_t>(NR, nc - p * NR), buf + p * NR * kc);
        // (implicit barrier: Bp complete)
      }
#pragma omp for schedule(static)
      for (int64_t u = 0; u < n_ic * n_chunks; ++u) {
        const int64_t ib = u / n_chunks, ch = u % n_chunks;
        const int64_t i0 = ib * mc_eff, mc = std::min(mc_eff, P.M - i0);
        const int64_t p0 = n_panels * ch / n_chunks, p1 = n_panels * (ch + 1) / n_chunks;
        run_unit(P, pack_a, pack_b, i0, mc, p0, p1, jc, nc, pc, kc, bp, beta);
      }
      // (implicit barrier: nobody still reads Bp when it is repacked)
    }
  }
}

// ---- small paths: no packing ----------------------------------------------------

// y[0:n] += s * x[0:n]
void axpy(float s, const float* x, float* y, int64_t n) {
  const VF vs(s);
  int64_t j = 0;
  for (; j + W <= n; j += W)
    xsimd::fma(vs, VF::load_unaligned(x + j), VF::load_unaligned(y + j)).store_unaligned(y + j);
  for (; j < n; ++j) y[j] += s * x[j];
}

// The small paths' store of C(i,j): alpha, beta and the whole epilogue as
// each element is written (a pass over C afterwards for the addend cost 5%
// of decoding one source at a time, whose recurrent GEMMs all take these paths).
inline float store_value(const Problem& P, float v, float c, int64_t i, int64_t j) {
  return finish(blend(v, c, P.alpha, P.beta), P.ep, i, j);
}

// Row i of C, columns [j0, j0+n), from acc.
void store_row(const Problem& P, int64_t i, int64_t j0, const float* acc, int64_t n) {
  float* c = P.C + i * P.ldc + j0;
  for (int64_t j = 0; j < n; ++j) c[j] = store_value(P, acc[j], c[j], i, j0 + j);
}

// The small paths split a length over threads in chunks of whole vectors, at
// least 16 of them (smaller chunks cost more in OpenMP than they save).
int64_t chunk_for(int64_t len, int nt) {
  return std::max<int64_t>(W * 16, (len + nt - 1) / nt / W * W + W);
}

// Few rows (decoder steps, GEMV): each row of C from contiguous streams.
void gemm_few_rows(const Problem& P, int nt) {
  const int64_t M = P.M, N = P.N, K = P.K;
  if (!P.tb) {
    // c_i = sum_k a(i,k) * B[k, :]: axpy over contiguous rows of B, split over columns.
    const int64_t chunk = chunk_for(N, nt);
    const int64_t n_chunks = (N + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n_chunks > 1)
    for (int64_t ch = 0; ch < n_chunks; ++ch) {
      const int64_t j0 = ch * chunk, n = std::min(chunk, N - j0);
      std::vector<float> acc(static_cast<size_t>(n));
      for (int64_t i = 0; i < M; ++i) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t k = 0; k < K; ++k) {
          const float a = P.ta ? P.A[k * P.lda + i] : P.A[i * P.lda + k];
          axpy(a, P.B + k * P.ldb + j0, acc.data(), n);
        }
        store_row(P, i, j0, acc.data(), n);
      }
    }
  } else {
    // c(i,j) = dot(a_i, B[j, :]): both contiguous (a_i gathered once if ta).
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      std::vector<float> arow(static_cast<size_t>(K));
      for (int64_t i = 0; i < M; ++i) {
        const float* a = P.A + i * P.lda;
        if (P.ta) {
          for (int64_t k = 0; k < K; ++k) arow[k] = P.A[k * P.lda + i];
          a = arow.data();
        }
#pragma omp for schedule(static)
        for (int64_t j = 0; j < N; ++j) {
          float& c = P.C[i * P.ldc + j];
          c = store_value(P, rows::dot(a, P.B + j * P.ldb, K), c, i, j);
        }
      }
    }
  }
}

// Few columns (matrix-vector, N < one vector): column j of op(B) gathered once.
void gemm_few_cols(const Problem& P, int nt) {
  const int64_t M = P.M, N = P.N, K = P.K;
  std::vector<float> bcol(static_cast<size_t>(N * K));
  for (int64_t j = 0; j < N; ++j)
    for (int64_t k = 0; k < K; ++k)
      bcol[j * K + k] = P.tb ? P.B[j * P.ldb + k] : P.B[k * P.ldb + j];
  if (!P.ta) {
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float& c = P.C[i * P.ldc + j];
        c = store_value(P, rows::dot(P.A + i * P.lda, bcol.data() + j * K, K), c, i, j);
      }
  } else {
    // op(A) columns are rows of A: c(:, j) = sum_k b(k,j) * A[k, :], split over rows.
    const int64_t chunk = chunk_for(M, nt);
    const int64_t n_chunks = (M + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n_chunks > 1)
    for (int64_t ch = 0; ch < n_chunks; ++ch) {
      const int64_t i0 = ch * chunk, m = std::min(chunk, M - i0);
      std::vector<float> acc(static_cast<size_t>(m));
      for (int64_t j = 0; j < N; ++j) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t k = 0; k < K; ++k) axpy(bcol[j * K + k], P.A + k * P.lda + i0, acc.data(), m);
        for (int64_t i = 0; i < m; ++i) {
          float& c = P.C[(i0 + i) * P.ldc + j];
          c = store_value(P, acc[i], c, i0 + i, j);
        }
      }
    }
  }
}

}  // namespace

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
          const GemmEpilogue& ep) {
  check(M >= 0 && N >= 0 && K >= 0, "gemm: negative size M=", M, " N=", N, " K=", K);
  check(lda >= std::max<int64_t>(1, ta ? M : K), "gemm: lda=", lda, " too small for ",
        ta ? "A^T" : "A", " [", ta ? K : M, ",", ta ? M : K, "]");
  check(ldb >= std::max<int64_t>(1, tb ? K : N), "gemm: ldb=", ldb, " too small for ",
        tb ? "B^T" : "B", " [", tb ? N : K, ",", tb ? K : N, "]");
  check(ldc >= std::max<int64_t>(1, N), "gemm: ldc=", ldc, " too small for C [", M, ",", N, "]");
  check(!ep.gate || ep.ldg >= std::max<int64_t>(1, N), "gemm: ldg=", ep.ldg,
        " too small for the gate [", M, ",", N, "]");
  check(!ep.add || ep.ld_add >= std::max<int64_t>(1, N), "gemm: ld_add=", ep.ld_add,
        " too small for the addend [", M, ",", N, "]");
  // The blocked path sums the rows of a transposed A as it packs it; the
  // other paths (and any call that returns early) sum them here.
  const bool packs_a = ta && M >= MR / 2 && N >= W && K > 0 && alpha != 0.f;
  if (ep.row_sums && !packs_a) plain_row_sums(ta, M, K, A, lda, ep.row_sums);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.f) {  // C = beta * C, never reading C when beta == 0
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        C[i * ldc + j] = finish(beta == 0.f ? 0.f : beta * C[i * ldc + j], ep, i, j);
    return;
  }
  const Problem P{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep};
  // Threads pay off above ~1 MFLOP; inside a parallel region (matmul over a
  // batch of small products) run serial.
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int nt = (omp_in_parallel() || flops < 2e6) ? 1 : num_threads();
  if (M >= MR / 2 && N >= W) return gemm_blocked(P, nt);
  if (M < MR / 2)
    gemm_few_rows(P, nt);
  else
    gemm_few_cols(P, nt);
}

PackedB::PackedB(bool tb_, int64_t K_, int64_t N_, const float* B_, int64_t ldb_)
    : tb(tb_), K(K_), N(N_), B(B_), ldb(ldb_) {
  check(K >= 0 && N >= 0, "PackedB: negative size K=", K, " N=", N);
  check(ldb >= std::max<int64_t>(1, tb ? K : N), "PackedB: ldb=", ldb, " too small for ",
        tb ? "B^T" : "B", " [", tb ? N : K, ",", tb ? K : N, "]");
  // Blocks in gemm_blocked's loop order (jc outer, pc inner), each its
  // micro-panels as pack_b_panel writes them.
  struct Panel { int64_t jc, pc, p, off; };
  std::vector<Panel> todo;
  int64_t size = 0;
  for (int64_t jc = 0; jc < N; jc += NC)
    for (int64_t pc = 0; pc < K; pc += KC) {
      offsets.push_back(size);
      const int64_t nc = std::min<int64_t>(NC, N - jc), kc = std::min<int64_t>(KC, K - pc);
      for (int64_t p = 0; p * NR < nc; ++p) {
        todo.push_back({jc, pc, p, size});
        size += NR * kc;
      }
    }
  if (size == 0) return;
  panels = static_cast<float*>(alloc_aligned(size_t(size) * sizeof(float)));
  const int64_t n = int64_t(todo.size());
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (worth_threads(size))
  for (int64_t t = 0; t < n; ++t) {
    const Panel& q = todo[size_t(t)];
    const int64_t nc = std::min<int64_t>(NC, N - q.jc), kc = std::min<int64_t>(KC, K - q.pc);
    pack_b_panel(tb, B, ldb, q.pc, kc, q.jc + q.p * NR, std::min<int64_t>(NR, nc - q.p * NR),
                 panels + q.off);
  }
}

PackedB::~PackedB() { free_aligned(panels); }

void gemm(int64_t M, float alpha, const float* A, int64_t lda, const PackedB& B, float beta,
          float* C, int64_t ldc, const GemmEpilogue& ep) {
  const int64_t N = B.N, K = B.K;
  // The cases gemm() does not block (and so never packs) take the plain call.
  if (M < MR / 2 || N < W || K == 0 || alpha == 0.f)
    return gemm(false, B.tb, M, N, K, alpha, A, lda, B.B, B.ldb, beta, C, ldc, ep);
  check(M >= 0 && lda >= std::max<int64_t>(1, K) && ldc >= std::max<int64_t>(1, N),
        "gemm (packed B): bad sizes M=", M, " lda=", lda, " ldc=", ldc, " for B [", K, ",", N,
        "]");
  check(!ep.gate || ep.ldg >= N, "gemm: ldg=", ep.ldg, " too small for the gate [", M, ",", N,
        "]");
  check(!ep.add || ep.ld_add >= N, "gemm: ld_add=", ep.ld_add, " too small for the addend [", M,
        ",", N, "]");
  if (ep.row_sums) plain_row_sums(false, M, K, A, lda, ep.row_sums);
  Problem P{false, B.tb, M, N, K, alpha, A, lda, B.B, B.ldb, beta, C, ldc, ep};
  P.pre = &B;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  gemm_blocked(P, (omp_in_parallel() || flops < 2e6) ? 1 : num_threads());
}

}  // namespace qkv
