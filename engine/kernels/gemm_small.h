// GEMM for operands that already sit in L1/L2: register tiles straight over
// A and B, with no packing, no blocking and no threads.
//   C = alpha * op(A) * B + beta * C, row-major:
//   op(A): [M,K] (A is [M,K] with lda >= K, or [K,M] with lda >= M when ta)
//   B:     [K,N] with ldb >= N (rows of N contiguous floats)
//   C:     [M,N] with ldc >= N; beta == 0: C is not read.
// The fused attention calls it on per-head blocks (64 or 128 rows, a head
// dimension of 32 or a key block of 128 columns, K of 32 to 128). Through
// gemm() those blocks paid for packing B and the blocked driver's setup on
// every call, and a 32-wide N ran half a 64-wide micro-tile: 45-110 GFLOP/s
// against gemm()'s 170 on large shapes. gemm_ref() is its oracle.
#pragma once
#include <cstdint>

namespace qkv {

void gemm_small(bool ta, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace qkv
