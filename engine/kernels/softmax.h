// Softmax and log-softmax along the last axis, numerically stable (the row max
// is subtracted before exp). Rows are independent: threads split rows.
#pragma once
#include "engine/tensor.h"

namespace qkv {

// x, y: [rows, n] contiguous; y may alias x.
void softmax_forward(const float* x, float* y, int64_t rows, int64_t n);
void softmax_forward_ref(const float* x, float* y, int64_t rows, int64_t n);
void log_softmax_forward(const float* x, float* y, int64_t rows, int64_t n);
void log_softmax_forward_ref(const float* x, float* y, int64_t rows, int64_t n);

// x: [..., n] -> [..., n]
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);

}  // namespace qkv
