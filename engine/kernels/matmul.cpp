// Batched matmul over broadcast leading dimensions, one gemm() per batch entry.
// Large products thread inside gemm(); many small ones (attention heads: B*NH
// products of T x HD) thread over the batch instead, gemm() then running serial.
#include "engine/kernels/matmul.h"

#include <omp.h>

#include <algorithm>

#include "engine/kernels/binary.h"
#include "engine/kernels/gemm.h"
#include "engine/threads.h"

namespace qkv {
namespace {

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                        const float*, int64_t, float, float*, int64_t,
                        const GemmEpilogue&);

Tensor matmul_with(GemmFn fn, const char* op, const Tensor& a, const Tensor& b, bool ta,
                   bool tb) {
  check(a.dim() >= 2 && b.dim() >= 2, op, ": expected operands of rank >= 2, got ", a.shape(),
        " x ", b.shape());
  const int64_t M = ta ? a.size(-1) : a.size(-2), Ka = ta ? a.size(-2) : a.size(-1);
  const int64_t Kb = tb ? b.size(-1) : b.size(-2), N = tb ? b.size(-2) : b.size(-1);
  check(Ka == Kb, op, ": inner dimensions differ: ", a.shape(), (ta ? "^T" : ""), " x ",
        b.shape(), (tb ? "^T" : ""));
  const int64_t K = Ka;
  if (b.dim() == 2 && !ta && a.dim() > 2) {
    // A rank-2 right operand shared by the whole batch (a Linear weight): one
    // GEMM over all batch rows at once, [prod(batch) * M, K] x [K, N].
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    out_shape.push_back(N);
    Tensor out(out_shape);
    if (out.numel() > 0)
      fn(false, tb, out.numel() / N, N, K, 1.f, a.data(), std::max<int64_t>(1, K), b.data(),
         std::max<int64_t>(1, b.size(-1)), 0.f, out.data(), N, {});
    return out;
  }
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, op);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out(out_shape);
  const int64_t nb = numel_of(batch);
  if (out.numel() == 0) return out;

  // Index of batch entry `i` of the broadcast batch in an operand's batch dims.
  auto operand_index = [&](const Shape& s, int64_t i) {
    int64_t idx = 0, stride = 1;
    const int64_t off = int64_t(batch.size()) - int64_t(s.size());
    for (int64_t d = int64_t(batch.size()) - 1; d >= 0; --d) {
      int64_t coord = i % batch[d];
      i /= batch[d];
      if (d >= off) {
        int64_t sd = s[d - off];
        idx += (sd == 1 ? 0 : coord) * stride;
        stride *= sd;
      }
    }
    return idx;
  };
  // BLAS convention: a leading dimension is at least 1, even for an empty axis.
  const int64_t lda = std::max<int64_t>(1, a.size(-1)), ldb = std::max<int64_t>(1, b.size(-1)),
                sa = a.size(-1) * a.size(-2),
                sb = b.size(-1) * b.size(-2);
  const float* A = a.data();
  const float* Bp = b.data();
  float* C = out.data();
  auto one = [&](int64_t i) {
    fn(ta, tb, M, N, K, 1.f, A + operand_index(ba, i) * sa, lda, Bp + operand_index(bb, i) * sb,
       ldb, 0.f, C + i * M * N, N, {});
  };
  // Thread over the batch when each product is too small to split well.
  const bool per_batch = nb >= num_threads() && M * N * K < (int64_t(1) << 21);
  if (per_batch && num_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static) num_threads(num_threads())
    for (int64_t i = 0; i < nb; ++i) one(i);
  } else {
    for (int64_t i = 0; i < nb; ++i) one(i);
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  return matmul_with(gemm, "matmul", a, b, ta, tb);
}

Tensor matmul_ref(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  return matmul_with(gemm_ref, "matmul_ref", a, b, ta, tb);
}

}  // namespace qkv
