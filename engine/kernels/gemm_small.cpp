// Unpacked register-tiled GEMM (see gemm_small.h). Columns go in panels of
// up to 4 vectors; each panel's rows in tiles of MR, where MR shrinks as the
// panel narrows so that a tile keeps 12-24 accumulators in flight (FMA
// latency 4 x 2 pipes needs at least 8) while the loads per k (NV vectors of
// B + MR broadcasts of A) stay within the two load ports. Column tails past
// the last whole vector go through a scalar loop.
#include "engine/kernels/gemm_small.h"

#include <algorithm>

#include "engine/error.h"
#include "engine/simd.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

// C[0:mr, 0:NV*W] = alpha * a[mr x K] * b[K x NV*W] + beta * C, mr <= MR.
// a(i, k) = kAT ? a[k*lda + i] : a[i*lda + k]; rows i >= mr read row mr-1
// (in bounds, discarded).
template <int MR, int NV, bool kAT>
__attribute__((always_inline)) inline void tile(int64_t K, const float* __restrict a, int64_t lda,
                                                const float* __restrict b, int64_t ldb, float* c,
                                                int64_t ldc, int mr, float alpha, float beta) {
  VF acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = VF(0.f);
  int64_t off[MR];  // where row i of op(A) starts: a(i, k) = a[off[i] + k * step]
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) off[i] = kAT ? std::min(i, mr - 1) : std::min(i, mr - 1) * lda;
  const int64_t step = kAT ? lda : 1;
  for (int64_t k = 0; k < K; ++k) {
    VF bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = VF::load_unaligned(b + k * ldb + v * W);
    const float* ak = a + k * step;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const VF ai(ak[off[i]]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
    }
  }
  const VF va(alpha), vb(beta);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + v * W;
      VF r = acc[i][v] * va;
      if (beta != 0.f) r = xsimd::fma(vb, VF::load_unaligned(p), r);
      r.store_unaligned(p);
    }
  }
}

// Columns [0, NV*W) of C over all M rows, in tiles of MR rows.
template <int MR, int NV, bool kAT>
void panel(int64_t M, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i0 = 0; i0 < M; i0 += MR) {
    const float* a = kAT ? A + i0 : A + i0 * lda;
    tile<MR, NV, kAT>(K, a, lda, B, ldb, C + i0 * ldc, ldc, int(std::min<int64_t>(MR, M - i0)),
                      alpha, beta);
  }
}

template <bool kAT>
void run(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
         const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  int64_t j0 = 0;
  for (; j0 + W <= N; j0 += 4 * W) {
    const int64_t nv = std::min<int64_t>(4, (N - j0) / W);
    const float* b = B + j0;
    float* c = C + j0;
    switch (nv) {
      case 4: panel<6, 4, kAT>(M, K, alpha, A, lda, b, ldb, beta, c, ldc); break;
      case 3: panel<8, 3, kAT>(M, K, alpha, A, lda, b, ldb, beta, c, ldc); break;
      case 2: panel<12, 2, kAT>(M, K, alpha, A, lda, b, ldb, beta, c, ldc); break;
      default: panel<12, 1, kAT>(M, K, alpha, A, lda, b, ldb, beta, c, ldc); break;
    }
    if (nv < 4) {
      j0 += nv * W;
      break;
    }
  }
  // column tail (fewer than W): scalar
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = j0; j < N; ++j) {
      float s = 0.f;
      for (int64_t k = 0; k < K; ++k) s += (kAT ? A[k * lda + i] : A[i * lda + k]) * B[k * ldb + j];
      float& cij = C[i * ldc + j];
      cij = alpha * s + (beta != 0.f ? beta * cij : 0.f);
    }
}

}  // namespace

void gemm_small(bool ta, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check(M >= 0 && N >= 0 && K >= 0, "gemm_small: negative size M=", M, " N=", N, " K=", K);
  check(lda >= std::max<int64_t>(1, ta ? M : K) && ldb >= std::max<int64_t>(1, N) &&
            ldc >= std::max<int64_t>(1, N),
        "gemm_small: leading dimensions lda=", lda, " ldb=", ldb, " ldc=", ldc,
        " too small for M=", M, " N=", N, " K=", K);
  if (M == 0 || N == 0) return;
  if (ta)
    run<true>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    run<false>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace qkv
