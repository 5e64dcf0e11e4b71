// Elementwise unary ops and their fused backward. gelu is the exact (erf) form,
// PyTorch's default.
// rsqrt is 1/sqrt(x) computed exactly (xsimd 8.1's rsqrt does not compile on
// AVX-512, and the rsqrt14 estimate is too coarse for LayerNorm).
// There are no per-op free functions named exp/log/... on purpose: they would
// shadow std::exp for unqualified calls inside namespace qkv.
#pragma once
#include "engine/tensor.h"

namespace qkv {

enum class UnaryOp { neg, exp, log, sqrt, rsqrt, abs, tanh, sigmoid, relu, gelu };
const char* unary_name(UnaryOp op);

// y[i] = f(x[i]) for i in [0, n); y may alias x.
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n);
void unary_forward_ref(UnaryOp op, const float* x, float* y, int64_t n);

Tensor unary(UnaryOp op, const Tensor& x);
Tensor unary_ref(UnaryOp op, const Tensor& x);

// ---- backward --------------------------------------------------------------------
// dx[i] = dy[i] * f'(x[i]) for i in [0, n); dx may alias dy. Each op reads the
// cheaper of its input x and its output y = f(x), never both; the pointer it
// does not read may be null:
//   reads y: exp (y), sqrt (0.5/y), rsqrt (-0.5 y^3), tanh (1 - y^2),
//            sigmoid (y (1 - y)), relu (y > 0, the same mask as x > 0)
//   reads x: log (1/x), abs (sign(x), 0 at 0), gelu (Phi(x) + x phi(x))
//   neither: neg (-1)
// relu reads y rather than x because y is usually kept alive anyway by the op
// that consumes it (a matmul saves its input), while x often is not.
// Kinks follow PyTorch: relu'(0) = 0, abs'(0) = 0; a NaN x gives 0 for both.
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n);
void unary_backward_ref(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                        int64_t n);
bool unary_backward_reads_x(UnaryOp op);
bool unary_backward_reads_y(UnaryOp op);

}  // namespace qkv
