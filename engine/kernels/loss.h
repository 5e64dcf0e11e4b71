// Elementwise loss kernels: mean-squared error and binary cross-entropy on
// logits, forward and backward, threaded over elements. The cross-entropy
// pair lives with the softmax it fuses (softmax.h). The *_ref forms compute
// the same formulas in double, one element at a time.
// The upstream gradient per element is g = dloss ? dloss[i] : scale: a `none`
// reduction passes dloss, `sum` and `mean` pass the scalar's share.
#pragma once
#include <cstdint>

namespace qkv {

// pred, target, diff, sq: [n]. diff = pred - target, sq = diff^2 (the loss per element).
void mse_forward(const float* pred, const float* target, float* diff, float* sq, int64_t n);
void mse_forward_ref(const float* pred, const float* target, float* diff, float* sq, int64_t n);
// dpred = 2 diff g (dtarget = -dpred, left to the caller). diff, dloss, dpred: [n].
void mse_backward(const float* diff, const float* dloss, float scale, float* dpred, int64_t n);
void mse_backward_ref(const float* diff, const float* dloss, float scale, float* dpred, int64_t n);

// x (logits), y (targets in [0, 1]), loss: [n]. The stable form
//   loss = max(x, 0) - x y + log(1 + exp(-|x|))
// never takes exp of a positive number, and log1p keeps the tail accurate
// where exp(-|x|) is tiny.
void bce_with_logits_forward(const float* x, const float* y, float* loss, int64_t n);
void bce_with_logits_forward_ref(const float* x, const float* y, float* loss, int64_t n);
// dx = (sigmoid(x) - y) g, dy = -x g; either output may be null (not needed).
void bce_with_logits_backward(const float* x, const float* y, const float* dloss, float scale,
                              float* dx, float* dy, int64_t n);
void bce_with_logits_backward_ref(const float* x, const float* y, const float* dloss, float scale,
                                  float* dx, float* dy, int64_t n);

}  // namespace qkv
