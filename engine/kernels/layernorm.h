// LayerNorm over the last axis: y = (x - mean) * rstd * gamma + beta, with
// rstd = 1 / sqrt(var + eps) and the biased variance (as torch.nn.LayerNorm).
// Statistics use two passes (mean, then centred squares): the one-pass
// E[x^2] - E[x]^2 form cancels catastrophically when |mean| >> std.
// mean and rstd per row are returned because the backward needs them.
#pragma once
#include "engine/tensor.h"

namespace qkv {

// x: [rows, n]; mean, rstd: [rows]
void layernorm_stats(const float* x, int64_t rows, int64_t n, float eps, float* mean,
                     float* rstd);
void layernorm_stats_ref(const float* x, int64_t rows, int64_t n, float eps, float* mean,
                         float* rstd);
// gamma, beta: [n] or null (no affine). y: [rows, n], may alias x.
void layernorm_forward(const float* x, const float* gamma, const float* beta, int64_t rows,
                       int64_t n, float eps, float* y, float* mean, float* rstd);
void layernorm_forward_ref(const float* x, const float* gamma, const float* beta, int64_t rows,
                           int64_t n, float eps, float* y, float* mean, float* rstd);

struct LayerNormResult {
  Tensor y;     // x's shape
  Tensor mean;  // x's shape without the last axis
  Tensor rstd;  // same
};
// gamma, beta: undefined (no affine) or [n] where n = x.size(-1).
LayerNormResult layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                          float eps = 1e-5f);

}  // namespace qkv
