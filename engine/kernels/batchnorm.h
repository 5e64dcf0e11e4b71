// Batch normalisation over the channel axis of x: [N,C,S] (S = IH*IW for
// BatchNorm2d, 1 for BatchNorm1d on [N,C]), per-channel statistics over N*S
// values, fused: training computes mean and biased variance (two passes: mean,
// then centred squares — one-pass sum/sumsq loses everything on data with a
// large mean) and normalises in a third; the backward is one pass for the two
// sums and one for dx. Threaded over channels. *_ref: double-precision loops.
// Not here: the running-statistics update (the op does it from `var_unbiased`).
#pragma once
#include <cstdint>

namespace qkv {

// x, y: [N,C,S]; gamma, beta: [C] or null (no affine); mean, rstd,
// var_unbiased: [C] outputs (var_unbiased: centred sum of squares / (n - 1),
// for running_var; n == 1 gives NaN there, as torch).
void batchnorm_forward_train(const float* x, int64_t N, int64_t C, int64_t S, const float* gamma,
                             const float* beta, float eps, float* y, float* mean, float* rstd,
                             float* var_unbiased);
void batchnorm_forward_train_ref(const float* x, int64_t N, int64_t C, int64_t S,
                                 const float* gamma, const float* beta, float eps, float* y,
                                 float* mean, float* rstd, float* var_unbiased);
// Eval: normalises with the given per-channel mean and rstd (from running stats).
void batchnorm_forward_eval(const float* x, int64_t N, int64_t C, int64_t S, const float* gamma,
                            const float* beta, const float* mean, const float* rstd, float* y);

// dy: [N,C,S]. train: the statistics were the batch's, so
//   dx = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)),  dxh = dy * gamma
// else (eval, constant statistics) dx = dy * gamma * rstd. Always
//   dgamma = sum dy * xh, dbeta = sum dy   (xh = (x - mean) * rstd).
// dx, dgamma, dbeta may each be null (not needed).
void batchnorm_backward(const float* x, const float* dy, int64_t N, int64_t C, int64_t S,
                        const float* gamma, const float* mean, const float* rstd, bool train,
                        float* dx, float* dgamma, float* dbeta);
void batchnorm_backward_ref(const float* x, const float* dy, int64_t N, int64_t C, int64_t S,
                            const float* gamma, const float* mean, const float* rstd, bool train,
                            float* dx, float* dgamma, float* dbeta);

}  // namespace qkv
