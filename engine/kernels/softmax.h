// Softmax and log-softmax along the last axis, numerically stable (the row max
// is subtracted before exp), their backward kernels, and the fused
// cross-entropy (log-softmax + NLL + label smoothing) kernel pair.
// Rows are independent: threads split rows.
#pragma once
#include "engine/tensor.h"

namespace qkv {

// x, y: [rows, n] contiguous; y may alias x.
void softmax_forward(const float* x, float* y, int64_t rows, int64_t n);
void softmax_forward_ref(const float* x, float* y, int64_t rows, int64_t n);
void log_softmax_forward(const float* x, float* y, int64_t rows, int64_t n);
void log_softmax_forward_ref(const float* x, float* y, int64_t rows, int64_t n);

// ---- backward ----------------------------------------------------------------
// y: the forward's output; dy: d(loss)/dy; dx: d(loss)/dx, all [rows, n].
// dx may alias dy (or y). One pass per row after its reduction.
//   softmax:      dx = y * (dy - sum(dy * y))
//   log_softmax:  dx = dy - exp(y) * sum(dy)
// Masked (-inf) inputs: softmax gives them dx = 0 (y = 0); log_softmax gives
// dx = dy there (exp(-inf) = 0), as torch.
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n);
void softmax_backward_ref(const float* y, const float* dy, float* dx, int64_t rows, int64_t n);
void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n);
void log_softmax_backward_ref(const float* y, const float* dy, float* dx, int64_t rows, int64_t n);

// ---- fused cross-entropy ---------------------------------------------------------
// x: [rows, C] logits, target: [rows] class ids (in [0, C) or ignore_index;
// the caller validates), ls: label smoothing in [0, 1). Per row, with
// logp = log_softmax(x):
//   loss = (1 - ls) * -logp[t] + ls * mean_c(-logp[c])   (torch's definition)
// and 0 for ignored rows. One log-softmax pass, no [rows, C] temporary: saves
// per row the max and the log of the shifted sum, logp[c] = (x[c] - max) - logsum
// (two numbers, not max + logsum: that sum would round at large logits).
// loss, max, logsum: [rows]; max/logsum of ignored rows are left unwritten.
void cross_entropy_forward(const float* x, const int32_t* target, int64_t rows, int64_t C,
                           int64_t ignore_index, float ls, float* loss, float* max, float* logsum);
void cross_entropy_forward_ref(const float* x, const int32_t* target, int64_t rows, int64_t C,
                               int64_t ignore_index, float ls, float* loss, float* max,
                               float* logsum);
// d x = g_r * (softmax(x) - q), q = (1 - ls) one_hot(t) + ls / C, where the
// upstream per row is g_r = scale * (dloss ? dloss[r] : 1); ignored rows get 0.
// softmax is recomputed from x and the saved max/logsum (one pass). dx: [rows, C].
void cross_entropy_backward(const float* x, const int32_t* target, const float* max,
                            const float* logsum, const float* dloss, float scale, int64_t rows,
                            int64_t C, int64_t ignore_index, float ls, float* dx);
void cross_entropy_backward_ref(const float* x, const int32_t* target, const float* max,
                                const float* logsum, const float* dloss, float scale, int64_t rows,
                                int64_t C, int64_t ignore_index, float ls, float* dx);

// x: [..., n] -> [..., n]
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);

}  // namespace qkv
