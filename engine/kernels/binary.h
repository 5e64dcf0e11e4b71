// Broadcasting binary ops: add, sub, mul, div, maximum, minimum.
// Shapes broadcast as in NumPy/PyTorch (align right; 1 stretches).
// binary() is the SIMD kernel, binary_ref() its scalar oracle.
#pragma once
#include "engine/tensor.h"

namespace qkv {

enum class BinaryOp { add, sub, mul, div, maximum, minimum };
const char* binary_name(BinaryOp op);

// The broadcast shape of a and b, or Error naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary_ref(BinaryOp op, const Tensor& a, const Tensor& b);
// a = a op b in place; b must broadcast to a's shape (a's shape is kept).
void binary_inplace(BinaryOp op, Tensor& a, const Tensor& b);

inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
inline Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }

}  // namespace qkv
