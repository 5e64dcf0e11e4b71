// MSE and BCE-with-logits kernels (contract in loss.h). Memory-bound except
// BCE's exp/log1p (scalar libm, ~20x a copy), hence its lower thread threshold.
#include "engine/kernels/loss.h"

#include <algorithm>
#include <cmath>

#include "engine/threads.h"

namespace qkv {

// ---- mse ---------------------------------------------------------------------------

void mse_forward(const float* pred, const float* target, float* diff, float* sq, int64_t n) {
#pragma omp parallel for simd schedule(static) if (worth_threads(n)) num_threads(num_threads())
  for (int64_t i = 0; i < n; ++i) {
    diff[i] = pred[i] - target[i];
    sq[i] = diff[i] * diff[i];
  }
}

void mse_forward_ref(const float* pred, const float* target, float* diff, float* sq, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(pred[i]) - double(target[i]);
    diff[i] = float(d);
    sq[i] = float(d * d);
  }
}

void mse_backward(const float* diff, const float* dloss, float scale, float* dpred, int64_t n) {
  const float s2 = 2.f * scale;
#pragma omp parallel for simd schedule(static) if (worth_threads(n)) num_threads(num_threads())
  for (int64_t i = 0; i < n; ++i) dpred[i] = dloss ? 2.f * diff[i] * dloss[i] : s2 * diff[i];
}

void mse_backward_ref(const float* diff, const float* dloss, float scale, float* dpred, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    dpred[i] = float(2.0 * diff[i] * (dloss ? double(dloss[i]) : double(scale)));
}

// ---- bce_with_logits ---------------------------------------------------------------------

void bce_with_logits_forward(const float* x, const float* y, float* loss, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_threads(16 * n)) num_threads(num_threads())
  for (int64_t i = 0; i < n; ++i)
    loss[i] = std::max(x[i], 0.f) - x[i] * y[i] + std::log1p(std::exp(-std::fabs(x[i])));
}

void bce_with_logits_forward_ref(const float* x, const float* y, float* loss, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double xi = x[i];  // -log(sigmoid(x)) y - log(1 - sigmoid(x)) (1 - y), stably
    loss[i] = float(std::max(xi, 0.0) - xi * y[i] + std::log1p(std::exp(-std::fabs(xi))));
  }
}

void bce_with_logits_backward(const float* x, const float* y, const float* dloss, float scale,
                              float* dx, float* dy, int64_t n) {
  if (dx) {
#pragma omp parallel for schedule(static) if (worth_threads(16 * n)) num_threads(num_threads())
    for (int64_t i = 0; i < n; ++i) {
      const float e = std::exp(-std::fabs(x[i]));  // sigmoid without overflow
      const float sig = x[i] >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
      dx[i] = (sig - y[i]) * (dloss ? dloss[i] : scale);
    }
  }
  if (dy)
    for (int64_t i = 0; i < n; ++i) dy[i] = -x[i] * (dloss ? dloss[i] : scale);
}

void bce_with_logits_backward_ref(const float* x, const float* y, const float* dloss, float scale,
                                  float* dx, float* dy, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = dloss ? double(dloss[i]) : double(scale);
    if (dx) dx[i] = float((1.0 / (1.0 + std::exp(-double(x[i]))) - y[i]) * g);
    if (dy) dy[i] = float(-double(x[i]) * g);
  }
}

}  // namespace qkv
