// Gradient-clipping kernels (contract in clip.h).
#include "engine/kernels/clip.h"

#include <algorithm>
#include <cmath>

#include "engine/simd.h"

namespace qkv {

using simd::VF;
using simd::W;

namespace {

// Float lanes accumulate at most kBlock / (4W) terms before the block's sum
// moves to double: 4 terms on AVX-512, 16 on SSE2, error ~1 ulp per block.
constexpr int64_t kBlock = 256;

// NaN in either operand wins, as torch's max.
inline float max_nan(float a, float b) { return std::isnan(a) || a > b ? a : b; }
inline VF max_nan(VF a, VF b) { return xsimd::select(xsimd::isnan(a) || a > b, a, b); }

}  // namespace

double clip_power_sum(const float* x, int64_t n, double p) {
  if (p != 1 && p != 2) return clip_power_sum_ref(x, n, p);
  const bool sq = p == 2;
  auto term = [sq](VF v) { return sq ? v * v : xsimd::abs(v); };
  double total = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    VF a0(0.f), a1(0.f), a2(0.f), a3(0.f);
    int64_t i = b;
    for (; i + 4 * W <= e; i += 4 * W) {
      a0 += term(VF::load_unaligned(x + i));
      a1 += term(VF::load_unaligned(x + i + W));
      a2 += term(VF::load_unaligned(x + i + 2 * W));
      a3 += term(VF::load_unaligned(x + i + 3 * W));
    }
    for (; i + W <= e; i += W) a0 += term(VF::load_unaligned(x + i));
    if (i < e) a1 += term(simd::load_partial(x + i, int(e - i), 0.f));
    total += double(simd::hsum((a0 + a1) + (a2 + a3)));
  }
  return total;
}

double clip_power_sum_ref(const float* x, int64_t n, double p) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::pow(std::fabs(double(x[i])), p);
  return s;
}

float clip_max_abs(const float* x, int64_t n) {
  VF m(0.f);
  int64_t i = 0;
  for (; i + W <= n; i += W) m = max_nan(xsimd::abs(VF::load_unaligned(x + i)), m);
  float r = 0.f;
  alignas(64) float lanes[W];
  m.store_aligned(lanes);
  for (int k = 0; k < W; ++k) r = max_nan(lanes[k], r);
  for (; i < n; ++i) r = max_nan(std::fabs(x[i]), r);
  return r;
}

float clip_max_abs_ref(const float* x, int64_t n) {
  float r = 0.f;
  for (int64_t i = 0; i < n; ++i) r = max_nan(std::fabs(x[i]), r);
  return r;
}

void clip_scale(float* x, int64_t n, float coef) {
  int64_t i = 0;
  for (; i + W <= n; i += W) (VF::load_unaligned(x + i) * VF(coef)).store_unaligned(x + i);
  for (; i < n; ++i) x[i] *= coef;
}

void clip_scale_ref(float* x, int64_t n, float coef) {
  for (int64_t i = 0; i < n; ++i) x[i] *= coef;
}

void clip_clamp(float* x, int64_t n, float clip) {
  const VF hi(clip), lo(-clip);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const VF v = VF::load_unaligned(x + i);
    xsimd::select(v < lo, lo, xsimd::select(v > hi, hi, v)).store_unaligned(x + i);
  }
  for (; i < n; ++i) x[i] = x[i] < -clip ? -clip : (x[i] > clip ? clip : x[i]);
}

void clip_clamp_ref(float* x, int64_t n, float clip) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] < -clip ? -clip : (x[i] > clip ? clip : x[i]);
}

}  // namespace qkv
