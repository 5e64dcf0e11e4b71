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
#include <vector>

namespace qkv {

// Applied to each element as C is stored, after alpha and beta:
//   v = act(alpha * op(A)op(B)(i,j) + beta * c(i,j) + add(i,j) + row_bias[i] + col_bias[j])
//   c(i,j) = gate(i,j) > 0 ? v : 0        (no gate: c(i,j) = v)
// (a missing term adds nothing; act is relu or the identity). Folding a
// Linear's bias and ReLU, or a convolution's per-channel bias, into the GEMM's
// last write of C saves a full pass over the output for each. The gate is
// ReLU's backward through its saved output y = relu(z): the GEMM that makes
// dy stores dz = dy * [y > 0] directly (a feed-forward block's dX of its
// second Linear), instead of a pass reading dy and y and writing dz.
// The addend is a matrix added on the way out: a recurrence's pre-activations
// are its input part plus h W_hh^T, written in one pass from the input part
// instead of a copy of it that the GEMM then accumulates onto (beta = 1).
struct GemmEpilogue {
  const float* row_bias = nullptr;  // [M]
  const float* col_bias = nullptr;  // [N]
  const float* add = nullptr;       // [M,N], row stride ld_add; must not overlap C
  int64_t ld_add = 0;
  bool relu = false;
  const float* gate = nullptr;  // [M,N], row stride ldg
  int64_t ldg = 0;
  // Not an epilogue but a side output of the same call: when set, row_sums[i]
  // = sum_k op(A)(i,k) ([M]). A weight gradient dW = dY^T X packs every
  // element of dY^T anyway; summing there gives the bias gradient (the column
  // sums of dY) without another pass over dY.
  float* row_sums = nullptr;
};

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
          const GemmEpilogue& ep = {});
void gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
              const GemmEpilogue& ep = {});

// A right operand op(B) [K,N] packed once for many products with it (an RNN's
// h W_hh^T at every time step): the micro-panels gemm() would otherwise pack
// on every call, which for a batch of 32-64 rows costs a good part of the
// product itself (a 4 MiB W_hh^T copied each step). It keeps a pointer to B
// for the small paths that do not pack: B must outlive it, unchanged.
class PackedB {
 public:
  PackedB(bool tb, int64_t K, int64_t N, const float* B, int64_t ldb);
  ~PackedB();
  PackedB(const PackedB&) = delete;
  PackedB& operator=(const PackedB&) = delete;

  bool tb;
  int64_t K, N;
  const float* B;
  int64_t ldb;
  float* panels = nullptr;        // the (jc, pc) blocks, in gemm()'s loop order
  std::vector<int64_t> offsets;   // block (jc index, pc index) -> offset in panels
};

// C = alpha * A * op(B) + beta * C with op(B) prepacked; as gemm(false, B.tb, ...).
void gemm(int64_t M, float alpha, const float* A, int64_t lda, const PackedB& B, float beta,
          float* C, int64_t ldc, const GemmEpilogue& ep = {});

}  // namespace qkv
