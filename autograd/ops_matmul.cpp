// matmul on Vars. Backward, with op(X) = X or X^T as stored:
//   C = op(A) op(B)          [..,M,K] x [..,K,N] -> [..,M,N]
//   d op(A) = dC op(B)^T     d op(B) = op(A)^T dC
// each written as one engine matmul with the transposes folded into the GEMM
// packing (nothing is materialised). A rank-2 operand shared by a batch (a
// Linear weight) gets its gradient from one GEMM over the flattened batch
// rather than a batch of GEMMs and a sum.
#include "autograd/ops.h"
#include "engine/kernels/matmul.h"

namespace qkv {
namespace {

// [.., R, C] -> [prod(..) * R, C]
Tensor flatten_rows(const Tensor& t) { return t.view({-1, t.size(-1)}); }

}  // namespace

Var matmul(const Var& a, const Var& b, bool ta, bool tb) {
  Tensor out = qkv::matmul(a.value(), b.value(), ta, tb);
  return record("matmul", out, {a, b},
                [A = a.value(), B = b.value(), ta, tb](const Tensor& dC, const std::vector<bool>& needs) {
                  std::vector<Tensor> g(2);
                  if (needs[0]) {
                    if (!ta) {
                      g[0] = sum_to_shape(qkv::matmul(dC, B, false, !tb), A.shape());
                    } else {
                      g[0] = sum_to_shape(qkv::matmul(B, dC, tb, true), A.shape());
                    }
                  }
                  if (needs[1]) {
                    if (B.dim() == 2 && A.dim() > 2 && !ta) {
                      // shared weight: one GEMM with K = batch * M
                      Tensor a2 = flatten_rows(A), d2 = flatten_rows(dC);
                      g[1] = tb ? qkv::matmul(d2, a2, true, false) : qkv::matmul(a2, d2, true, false);
                    } else if (!tb) {
                      g[1] = sum_to_shape(qkv::matmul(A, dC, !ta, false), B.shape());
                    } else {
                      g[1] = sum_to_shape(qkv::matmul(dC, A, true, ta), B.shape());
                    }
                  }
                  return g;
                });
}

}  // namespace qkv
