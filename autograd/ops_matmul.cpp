// matmul on Vars. Backward, with op(X) = X or X^T as stored:
//   C = op(A) op(B)          [..,M,K] x [..,K,N] -> [..,M,N]
//   d op(A) = dC op(B)^T     d op(B) = op(A)^T dC
// each written as one engine matmul with the transposes folded into the GEMM
// packing (nothing is materialised). A rank-2 operand shared by a batch (a
// Linear weight) gets its gradient from one GEMM over the flattened batch
// rather than a batch of GEMMs and a sum. linear() folds the bias into the
// GEMM's epilogue, saving the separate broadcast-add pass over the output and
// its backward identity; linear_relu also applies ReLU there (no second
// [..., N] tensor, no second pass); feed_forward_relu also folds the ReLU's
// backward into the GEMM that makes its upstream gradient.
#include <algorithm>

#include "autograd/ops.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/reduce.h"
#include "engine/threads.h"

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

namespace {

// A Linear's parameter gradients from dz [M, N] and its input x [M, K], each
// when needed: dw = dz^T x [N, K], and db = column sums of dz [N], summed as
// the GEMM packs dz^T (no pass of its own over dz) when dw is made too.
void param_grads(const Tensor& dz, const Tensor& x, bool need_w, bool need_b, Tensor& dw,
                 Tensor& db) {
  const int64_t M = dz.size(0), N = dz.size(1), K = x.size(1);
  if (!need_w) {
    if (need_b) db = reduce(ReduceOp::sum, dz, 0, false);
    return;
  }
  dw = Tensor({N, K});
  GemmEpilogue side;
  if (need_b) {
    db = Tensor({N});
    side.row_sums = db.data();
  }
  gemm(true, false, N, K, M, 1.f, dz.data(), std::max<int64_t>(N, 1), x.data(),
       std::max<int64_t>(K, 1), 0.f, dw.data(), std::max<int64_t>(K, 1), side);
}

// y = act(x w^T + b) with act = identity or relu; b must be defined.
Var linear_bias(const char* op, const Var& x, const Var& w, const Var& b, bool relu) {
  // x: [..., K], w: [N, K], b: [N] -> [..., N]
  const int64_t N = w.size(0), K = w.size(1);
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(N);
  Tensor out(out_shape);
  const int64_t M = out.numel() / std::max<int64_t>(N, 1);
  // The bias (and relu) are the GEMM's epilogue: applied as it stores C.
  GemmEpilogue ep;
  ep.col_bias = b.value().data();
  ep.relu = relu;
  gemm(false, true, M, N, K, 1.f, x.value().data(), std::max<int64_t>(K, 1), w.value().data(),
       std::max<int64_t>(K, 1), 0.f, out.data(), N, ep);
  // z = x w^T + b, y = act(z):  dz = dy (relu: dy * [y > 0]),
  //   dx = dz w,  dw = dz^T x (one GEMM over all rows),  db = column sums of dz
  return record(op, out, {x, w, b},
                [X = x.value(), W = w.value(), Y = relu ? out : Tensor()](
                    const Tensor& dy, const std::vector<bool>& needs) {
                  std::vector<Tensor> g(3);
                  Tensor dz = dy;
                  if (Y.defined()) {
                    dz = Tensor(dy.shape());
                    unary_backward(UnaryOp::relu, nullptr, Y.data(), dy.data(), dz.data(), dy.numel());
                  }
                  const Tensor d2 = flatten_rows(dz);
                  if (needs[0]) g[0] = qkv::matmul(dz, W, false, false);
                  param_grads(d2, flatten_rows(X), needs[1], needs[2], g[1], g[2]);
                  return g;
                });
}

void check_linear(const char* op, const Var& x, const Var& w, const Var& b) {
  check(x.dim() >= 2 && w.dim() == 2 && x.size(-1) == w.size(1), op,
        ": expected x [..., K] and w [N, K], got ", x.shape(), " and ", w.shape());
  check(!b.defined() || b.shape() == Shape{w.size(0)}, op, ": bias has shape ",
        b.defined() ? b.shape() : Shape{}, ", expected [", w.size(0), "]");
}

}  // namespace

Var linear_relu(const Var& x, const Var& w, const Var& b) {
  check_linear("linear_relu", x, w, b);
  if (!b.defined()) return relu(matmul(x, w, false, true));
  return linear_bias("linear_relu", x, w, b, true);
}

Var feed_forward_relu(const Var& x, const Var& w1, const Var& b1, const Var& w2, const Var& b2) {
  check_linear("feed_forward_relu", x, w1, b1);
  check(b1.defined() && b2.defined() && w2.dim() == 2 && w2.size(1) == w1.size(0) &&
            b2.shape() == Shape{w2.size(0)},
        "feed_forward_relu: expected w1 [F, K], b1 [F], w2 [N, F], b2 [N], got ", w1.shape(),
        ", ", b1.defined() ? b1.shape() : Shape{}, ", ", w2.shape(), ", ",
        b2.defined() ? b2.shape() : Shape{});
  const int64_t K = w1.size(1), F = w1.size(0), N = w2.size(0);
  Shape hs(x.shape().begin(), x.shape().end() - 1), ys = hs;
  hs.push_back(F);
  ys.push_back(N);
  // h = relu(x w1^T + b1): [M, F];  y = h w2^T + b2: [M, N]
  Tensor h(hs), y(ys);
  const int64_t M = h.numel() / std::max<int64_t>(F, 1);
  GemmEpilogue e1, e2;
  e1.col_bias = b1.value().data(), e1.relu = true;
  e2.col_bias = b2.value().data();
  const int64_t lk = std::max<int64_t>(K, 1), lf = std::max<int64_t>(F, 1),
                ln = std::max<int64_t>(N, 1);
  gemm(false, true, M, F, K, 1.f, x.value().data(), lk, w1.value().data(), lk, 0.f, h.data(), lf,
       e1);
  gemm(false, true, M, N, F, 1.f, h.data(), lf, w2.value().data(), lf, 0.f, y.data(), ln, e2);
  //   dz = (dy w2) * [h > 0]  (the gate: one GEMM, no ReLU-backward pass)
  //   dw2 = dy^T h, db2 = column sums of dy, dx = dz w1, dw1 = dz^T x, db1 = column sums of dz
  return record("feed_forward_relu", y, {x, w1, b1, w2, b2},
                [X = x.value(), W1 = w1.value(), W2 = w2.value(), h, M, K, F, N, lk, lf, ln](
                    const Tensor& dy, const std::vector<bool>& needs) {
                  std::vector<Tensor> g(5);
                  const Tensor dy2 = dy.view({M, N}), h2 = h.view({M, F});
                  param_grads(dy2, h2, needs[3], needs[4], g[3], g[4]);
                  if (!needs[0] && !needs[1] && !needs[2]) return g;
                  Tensor dz({M, F});
                  GemmEpilogue gate;
                  gate.gate = h.data(), gate.ldg = lf;
                  gemm(false, false, M, F, N, 1.f, dy.data(), ln, W2.data(), lf, 0.f, dz.data(),
                       lf, gate);
                  if (needs[0]) {
                    g[0] = Tensor(X.shape());
                    gemm(false, false, M, K, F, 1.f, dz.data(), lf, W1.data(), lk, 0.f,
                         g[0].data(), lk);
                  }
                  param_grads(dz, X.view({M, K}), needs[1], needs[2], g[1], g[2]);
                  return g;
                });
}

Var linear(const Var& x, const Var& w, const Var& b) {
  check_linear("linear", x, w, b);
  if (!b.defined()) return matmul(x, w, false, true);
  return linear_bias("linear", x, w, b, false);
}

}  // namespace qkv
