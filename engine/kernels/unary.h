// Elementwise unary ops. gelu is the exact (erf) form, PyTorch's default.
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

}  // namespace qkv
