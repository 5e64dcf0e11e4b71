// LayerNorm over the last axis: y = (x - mean) * rstd * gamma + beta, with
// rstd = 1 / sqrt(var + eps) and the biased variance (as torch.nn.LayerNorm).
// Statistics use two passes (mean, then centred squares): the one-pass
// E[x^2] - E[x]^2 form cancels catastrophically when |mean| >> std.
// mean and rstd per row are returned because the backward needs them.
// layernorm_backward turns them, x and dy into dx, dgamma and dbeta.
#pragma once
#include "engine/tensor.h"

namespace qkv {

// x: [rows, n]; mean, rstd: [rows]
void layernorm_stats(const float* x, int64_t rows, int64_t n, float eps, float* mean, float* rstd);
void layernorm_stats_ref(const float* x, int64_t rows, int64_t n, float eps, float* mean,
                         float* rstd);
// gamma, beta: [n] or null (no affine). y: [rows, n], may alias x. Large
// outputs (simd::stream_worth) are streamed: their mean/rstd may then differ
// from layernorm_stats' in the last bits (the sums are accumulated in another order).
void layernorm_forward(const float* x, const float* gamma, const float* beta, int64_t rows,
                       int64_t n, float eps, float* y, float* mean, float* rstd);
void layernorm_forward_ref(const float* x, const float* gamma, const float* beta, int64_t rows,
                           int64_t n, float eps, float* y, float* mean, float* rstd);

// ---- backward ----------------------------------------------------------------------
// x, dy, dx: [rows, n]; mean, rstd: [rows] (from the forward); gamma: [n] or
// null (= 1). With x_hat = (x - mean) * rstd and g = dy * gamma:
//   dx     = rstd * (g - mean(g) - x_hat * mean(g * x_hat))     per row
//   dgamma = sum_rows dy * x_hat,   dbeta = sum_rows dy          [n], overwritten
// Any of dx, dgamma, dbeta may be null (not wanted). x_hat is re-centred to
// mean 0 in each row (as it is exactly), which cancels the rounding of the
// float mean when |mean| >> std. dgamma/dbeta sum over a fixed partition of the
// rows (up to 8 blocks, by size only) in block order: the same bits for any
// thread count. dx may alias dy.
void layernorm_backward(const float* x, const float* mean, const float* rstd, const float* gamma,
                        const float* dy, int64_t rows, int64_t n, float* dx, float* dgamma,
                        float* dbeta);
void layernorm_backward_ref(const float* x, const float* mean, const float* rstd,
                            const float* gamma, const float* dy, int64_t rows, int64_t n, float* dx,
                            float* dgamma, float* dbeta);

struct LayerNormResult {
  Tensor y;     // x's shape
  Tensor mean;  // x's shape without the last axis
  Tensor rstd;  // same
};
// gamma, beta: undefined (no affine) or [n] where n = x.size(-1).
LayerNormResult layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                          float eps = 1e-5f);

}  // namespace qkv
