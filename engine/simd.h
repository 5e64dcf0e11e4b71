// xsimd 8.1 vocabulary shared by the kernels: the float batch of the build's
// architecture (16 lanes with -march=native on AVX-512, 4 with the portable
// SSE2 baseline), horizontal reductions and partial loads/stores for tails.
// Only names that exist in 8.1.0 (hadd, not reduce_add; no load_masked).
#pragma once
// g++ 12 warns inside its own avx512fintrin.h (_mm512_undefined_ps is
// `__m512 __Y = __Y;`, GCC bug 105593, fixed in 13) wherever xsimd's math is
// inlined; silenced here once for every kernel.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop

#include <cstdint>

namespace qkv::simd {

using VF = xsimd::batch<float>;
inline constexpr int W = int(VF::size);

inline const char* arch_name() { return xsimd::default_arch::name(); }

inline float hsum(VF v) { return xsimd::hadd(v); }

// 8.1 has no reduce_max: store and fold (cheap next to the row it ends).
inline float hmax(VF v) {
  alignas(64) float t[W];
  v.store_aligned(t);
  float m = t[0];
  for (int i = 1; i < W; ++i) m = t[i] > m ? t[i] : m;
  return m;
}

// Lanes [0, n) from p, the rest `fill`; n < W. Reads only p[0..n).
inline VF load_partial(const float* p, int n, float fill) {
  alignas(64) float t[W];
  for (int i = 0; i < W; ++i) t[i] = i < n ? p[i] : fill;
  return VF::load_aligned(t);
}

// Writes lanes [0, n) of v to p; n < W.
inline void store_partial(float* p, VF v, int n) {
  alignas(64) float t[W];
  v.store_aligned(t);
  for (int i = 0; i < n; ++i) p[i] = t[i];
}

// ---- non-temporal stores -----------------------------------------------------
// A [rows, n] output of kStreamBytes or more (far beyond L2, a good part of
// L3) that a kernel writes once is better sent straight to memory: stream()
// skips the read-for-ownership of each line, so the traffic is that of a
// copy. Only for 16-lane vectors at 64-byte aligned addresses: y aligned and
// n % W == 0 make every row start aligned. A thread ends with stream_fence().
inline constexpr int64_t kStreamBytes = int64_t(8) << 20;

inline bool stream_worth(const float* y, int64_t rows, int64_t n) {
  return W == 16 && n > 0 && n % W == 0 && rows >= 2 && reinterpret_cast<uintptr_t>(y) % 64 == 0 &&
         rows * n * int64_t(sizeof(float)) >= kStreamBytes;
}

#if defined(__AVX512F__)
inline void stream(float* p, VF v) { _mm512_stream_ps(p, v); }
inline void stream_fence() { _mm_sfence(); }
#else
inline void stream(float* p, VF v) { v.store_aligned(p); }
inline void stream_fence() {}
#endif

// ---- exp -------------------------------------------------------------------
// The kernels' exp: Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2), a
// degree-6 minimax polynomial for e^r (relative error 2e-9 in exact
// arithmetic, ~1e-7 in float: 1-2 ULP against std::exp), and 2^n applied by
// AVX-512's scalef, which also gives exact 0/denormals below -87 and inf above
// 88.72 without a branch or select. 12 vector operations per 16 floats, half
// of xsimd 8.1's exp (range selects, integer exponent build): softmax's exp
// pass is arithmetic-bound, so this is its speed. NaN propagates (the clamps
// return their second operand on NaN); -inf gives 0, +inf gives inf.
// Builds without AVX-512 use xsimd::exp.
#if defined(__AVX512F__)
inline VF exp(VF x) {
  const __m512 lo = _mm512_set1_ps(-104.f), hi = _mm512_set1_ps(89.f);
  const __m512 v = _mm512_min_ps(hi, _mm512_max_ps(lo, x));  // NaN stays (2nd operand)
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504089f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 = 0.693359375 (9 bits: n * hi is exact) - 2.12194440e-4
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.384365372e-03f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.374155499e-03f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166800156e-02f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666643173e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999999404e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}
#else
inline VF exp(VF x) { return xsimd::exp(x); }
#endif

}  // namespace qkv::simd
