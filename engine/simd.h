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

}  // namespace qkv::simd
