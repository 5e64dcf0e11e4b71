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

// The streamed kernels' skeleton (softmax, log-softmax, LayerNorm forward):
// one loop over the columns per step works on three rows at once. Step r
// (r0 - 1 .. r1) makes the reduction of row r+1 that reads it from memory
// (Next; its misses overlap the arithmetic), the L1-resident pass of row r
// (Cur), and the output of row r-1, written with stream() (Prev): x crosses
// the memory bus once in, y once out, as in a copy.
// step(Phase<Next, Cur, Prev>{}, r) for each step; then stream_fence().
template <bool N, bool C, bool P>
struct Phase {
  static constexpr bool next = N, cur = C, prev = P;
};

// The rows of x ([rows, n]) that step r of rows [r0, r1) reads, by phase; null
// where the phase has none: next = row r+1, ahead = row r+2 (to prefetch;
// the last row at the end), cur = row r, prev = row r-1.
template <class P>
struct StepRows {
  const float *next = nullptr, *ahead = nullptr, *cur = nullptr, *prev = nullptr;
  StepRows(const float* x, int64_t r, int64_t r1, int64_t n) {
    if constexpr (P::next) next = x + (r + 1) * n, ahead = x + (r + 2 < r1 ? r + 2 : r1 - 1) * n;
    if constexpr (P::cur) cur = x + r * n;
    if constexpr (P::prev) prev = x + (r - 1) * n;
  }
};

template <class Step>
void stream_rows(int64_t r0, int64_t r1, Step&& step) {
  step(Phase<true, false, false>{}, r0 - 1);
  for (int64_t r = r0; r < r1; ++r) {
    const bool next = r + 1 < r1, prev = r > r0;
    if (next && prev)
      step(Phase<true, true, true>{}, r);
    else if (next)
      step(Phase<true, true, false>{}, r);
    else if (prev)
      step(Phase<false, true, true>{}, r);
    else
      step(Phase<false, true, false>{}, r);
  }
  step(Phase<false, false, true>{}, r1);
  stream_fence();
}

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

// ---- fms with one rounding ----------------------------------------------------
// a * b - c rounded once. xsimd 8.1 has no AVX-512 fms: its generic a * b - c
// is fused only where the compiler contracts it (GCC: -O2 and up), so at -O1
// it rounds twice. The softmax family's exponent x log2e - m log2e needs the
// single rounding (large logits lose digits otherwise), so it asks for it.
#if defined(__AVX512F__)
inline VF fms(VF a, VF b, VF c) { return _mm512_fmsub_ps(a, b, c); }
#else
inline VF fms(VF a, VF b, VF c) { return xsimd::fms(a, b, c); }
#endif

// ---- exp2 (the softmax family's exp) -------------------------------------------
// 2^t in 7 vector operations, for exp(x - max) = 2^(x log2e - max log2e): one
// FMA makes t (softmax), or a subtraction and a multiply when t must be
// exactly 0 at the max (log-softmax: a one-element row gives exactly 0).
// t = floor(t) + j/32 + f with f in [0, 1/32): 2^(j/32) from a 32-entry table
// (one two-source permute, indexed by the low bits of t + 1.5*2^18 rounded
// down), 2^f by a degree-2 minimax polynomial (relative error 6.5e-8), and
// scalef applies 2^floor(t) (exact 0 / denormals below -126, inf above 128,
// no select). Relative error <= 2e-7 against 2^t of the float t; the rounding
// of t itself adds |t| * 4e-8, which only terms far below the row's max (that
// add nothing to it) see. -inf gives 0, NaN stays NaN, 0 gives exactly 1.
// Against `exp` above: 8 operations per exp(x - max) instead of 13 (the exp
// pass of softmax is arithmetic-bound): about half the time over an L1 row.
#if defined(__AVX512F__)
alignas(64) inline constexpr float kExp2Table[32] = {  // 2^(j/32), rounded to float
    1.0f,          1.0218971487f, 1.0442737824f, 1.0671404007f, 1.0905077327f, 1.1143867426f,
    1.1387886348f, 1.1637248588f, 1.1892071150f, 1.2152473600f, 1.2418578121f, 1.2690509572f,
    1.2968395547f, 1.3252366432f, 1.3542555469f, 1.3839098820f, 1.4142135624f, 1.4451808070f,
    1.4768261459f, 1.5091644276f, 1.5422108254f, 1.5759808451f, 1.6104903319f, 1.6457554782f,
    1.6817928305f, 1.7186192981f, 1.7562521604f, 1.7947090750f, 1.8340080864f, 1.8741676341f,
    1.9152065614f, 1.9571441242f};

inline VF exp2(VF t) {
  constexpr int kDown = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;
  // t + 1.5*2^18 has ulp 1/32: rounded down, its low 5 bits are j (for
  // |t| < 2^17; beyond, the result is 0 or inf whatever the table gives).
  const __m512 k = _mm512_add_round_ps(t, _mm512_set1_ps(393216.f), kDown);
  const __m512 f = _mm512_reduce_ps(t, (5 << 4) | kDown);  // t - floor(32 t)/32, exact
  const __m512 tj = _mm512_permutex2var_ps(_mm512_load_ps(kExp2Table), _mm512_castps_si512(k),
                                           _mm512_load_ps(kExp2Table + 16));
  // 2^(j/32) * 2^f = tj + tj * f * (c1 + c2 f)
  const __m512 q =
      _mm512_fmadd_ps(_mm512_set1_ps(0.242652692306f), f, _mm512_set1_ps(0.693123731607f));
  return _mm512_scalef_ps(_mm512_fmadd_ps(_mm512_mul_ps(tj, f), q, tj), t);
}
#else
inline VF exp2(VF t) { return xsimd::exp2(t); }
#endif

}  // namespace qkv::simd
