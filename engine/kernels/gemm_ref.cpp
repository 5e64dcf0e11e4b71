// The scalar GEMM oracle: a plain triple loop with a double accumulator, so it
// is both obviously right and more accurate than the kernel it checks.
#include "engine/kernels/gemm.h"

namespace qkv {

void gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
              const GemmEpilogue& ep) {
  if (ep.row_sums)
    for (int64_t i = 0; i < M; ++i) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += ta ? A[k * lda + i] : A[i * lda + k];
      ep.row_sums[i] = float(s);
    }
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        double a = ta ? A[k * lda + i] : A[i * lda + k];
        double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      float& c = C[i * ldc + j];
      double v = alpha * acc + (beta == 0.f ? 0.0 : double(beta) * c);
      if (ep.add) v += ep.add[i * ep.ld_add + j];
      if (ep.row_bias) v += ep.row_bias[i];
      if (ep.col_bias) v += ep.col_bias[j];
      if (ep.relu && v < 0) v = 0;
      if (ep.gate && !(ep.gate[i * ep.ldg + j] > 0.f)) v = 0;
      c = float(v);
    }
}

}  // namespace qkv
