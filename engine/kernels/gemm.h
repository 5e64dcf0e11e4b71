// GEMM: C = alpha * op(A) * op(B) + beta * C, row-major, with leading dimensions.
//   op(A): [M,K] (A is [M,K] with lda >= K, or [K,M] with lda >= M when ta)
//   op(B): [K,N] (B is [K,N] with ldb >= N, or [N,K] with ldb >= K when tb)
//   C:     [M,N] with ldc >= N
// When beta == 0, C is never read (it may hold NaN), as in BLAS.
// gemm() is the packed, cache-blocked, register-tiled SIMD kernel threaded with
// OpenMP (serial when called inside a parallel region); gemm_ref() is the plain
// triple loop it is tested against.
#pragma once
#include <cstdint>

namespace qkv {

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace qkv
