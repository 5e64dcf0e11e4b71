#include "engine/kernels/row_moments.h"

#include "engine/simd.h"

namespace qkv::rows {
namespace {

using simd::VF;
using simd::W;

// Four independent accumulators: add latency 4 cycles x 1 vector/cycle keeps
// the adder busy, and 4*W partial sums shrink the rounding error of one chain.
float block_sum(const float* p, int64_t n) {
  VF s0(0.f), s1(0.f), s2(0.f), s3(0.f);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    s0 += VF::load_unaligned(p + i);
    s1 += VF::load_unaligned(p + i + W);
    s2 += VF::load_unaligned(p + i + 2 * W);
    s3 += VF::load_unaligned(p + i + 3 * W);
  }
  for (; i + W <= n; i += W) s0 += VF::load_unaligned(p + i);
  if (i < n) s1 += simd::load_partial(p + i, int(n - i), 0.f);
  return simd::hsum((s0 + s1) + (s2 + s3));
}

}  // namespace

float sum(const float* p, int64_t n) {
  constexpr int64_t kBlock = 2048;
  if (n <= kBlock) return block_sum(p, n);
  const int64_t h = (n / 2 + 4 * W - 1) / (4 * W) * (4 * W);  // keeps the left half vector-sized
  return sum(p, h) + sum(p + h, n - h);
}

float dot(const float* a, const float* b, int64_t n) {
  VF s0(0.f), s1(0.f), s2(0.f), s3(0.f);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    s0 = xsimd::fma(VF::load_unaligned(a + i), VF::load_unaligned(b + i), s0);
    s1 = xsimd::fma(VF::load_unaligned(a + i + W), VF::load_unaligned(b + i + W), s1);
    s2 = xsimd::fma(VF::load_unaligned(a + i + 2 * W), VF::load_unaligned(b + i + 2 * W), s2);
    s3 = xsimd::fma(VF::load_unaligned(a + i + 3 * W), VF::load_unaligned(b + i + 3 * W), s3);
  }
  for (; i + W <= n; i += W) s0 = xsimd::fma(VF::load_unaligned(a + i), VF::load_unaligned(b + i), s0);
  float s = simd::hsum((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

Moments centred(const float* p, int64_t n, const float* next) {
  constexpr int kLine = 64 / int(sizeof(float));
  const float mean0 = sum(p, n) / float(n);
  const VF vm(mean0);
  VF a0(0.f), a1(0.f), q0(0.f), q1(0.f), q2(0.f), q3(0.f);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    if (next)
      for (int k = 0; k < 4 * W; k += kLine) __builtin_prefetch(next + i + k, 0, 3);
    const VF d0 = VF::load_unaligned(p + i) - vm, d1 = VF::load_unaligned(p + i + W) - vm;
    const VF d2 = VF::load_unaligned(p + i + 2 * W) - vm,
             d3 = VF::load_unaligned(p + i + 3 * W) - vm;
    a0 += d0 + d1;
    a1 += d2 + d3;
    q0 = xsimd::fma(d0, d0, q0);
    q1 = xsimd::fma(d1, d1, q1);
    q2 = xsimd::fma(d2, d2, q2);
    q3 = xsimd::fma(d3, d3, q3);
  }
  for (; i + W <= n; i += W) {
    const VF d = VF::load_unaligned(p + i) - vm;
    a0 += d;
    q0 = xsimd::fma(d, d, q0);
  }
  if (i < n) {  // fill the unused lanes with mean0: d = 0 there
    const VF d = simd::load_partial(p + i, int(n - i), mean0) - vm;
    a1 += d;
    q1 = xsimd::fma(d, d, q1);
  }
  return {mean0, simd::hsum(a0 + a1), simd::hsum((q0 + q1) + (q2 + q3))};
}

// ---- scalar references ---------------------------------------------------------

double sum_ref(const float* p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(p[i]);
  return s;
}

double dot_ref(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

MomentsRef centred_ref(const float* p, int64_t n) {
  const double mean0 = sum_ref(p, n) / double(n);
  double d1 = 0, d2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(p[i]) - mean0;
    d1 += d;
    d2 += d * d;
  }
  return {mean0, d1, d2};
}

}  // namespace qkv::rows
