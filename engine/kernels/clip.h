// Gradient-clipping kernels over one contiguous chunk: the partial norms
// (sum of |x|^p, max |x|) and the in-place scale and clamp. Serial: the
// caller (nn/clip.cpp) splits gradients into fixed chunks over threads and
// combines the partials in a fixed order. The *_ref forms are plain loops
// (in double for the sums) they are tested against.
#pragma once
#include <cstdint>

namespace qkv {

// sum |x|^p over x[0, n): p = 1 or 2 by SIMD (float lanes over 256-element
// blocks, blocks added in double); any other finite p > 0 scalar in double.
double clip_power_sum(const float* x, int64_t n, double p);
double clip_power_sum_ref(const float* x, int64_t n, double p);
// max |x| over x[0, n) (0 when n == 0); NaN wins, as torch's max.
float clip_max_abs(const float* x, int64_t n);
float clip_max_abs_ref(const float* x, int64_t n);
// x *= coef in place.
void clip_scale(float* x, int64_t n, float coef);
void clip_scale_ref(float* x, int64_t n, float coef);
// x = min(max(x, -clip), clip) in place (NaN stays NaN).
void clip_clamp(float* x, int64_t n, float clip);
void clip_clamp_ref(float* x, int64_t n, float clip);

}  // namespace qkv
