// Matrix transpose (see transpose.h): 16x16 register tiles with AVX-512,
// transpose_tiles (8x8 tiles of scalar copies) otherwise.
#include "engine/kernels/transpose.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>

namespace qkv {
namespace {

#if defined(__AVX512F__)
// g++ 12 warns inside its own avx512fintrin.h (_mm512_undefined_ps is
// `__m512 __Y = __Y;`, GCC bug 105593, fixed in 13), as engine/simd.h notes.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// One tile: rows [0, nr) x columns [0, nc) of src (nr, nc <= 16) into
// rows [0, nc) x columns [0, nr) of dst. Lanes past nc are not loaded (they
// read as 0 and are never stored); columns past nr are not stored.
//
// Four shuffle stages, each on all 16 registers:
//   1. unpack{lo,hi}_ps of row pairs: in each 128-bit lane, pairs (r, r+1)
//      interleaved;
//   2. unpack{lo,hi}_pd of those: u[4g + m] holds rows 4g..4g+3 of column
//      4L + m in 128-bit lane L;
//   3-4. shuffle_f32x4 gathers the four lanes that hold one column:
//      first rows 0-7 and 8-15 separately (v), then both halves (out).
inline void tile16(const float* src, int64_t lds, int nr, int nc, float* dst, int64_t ldd) {
  const __mmask16 cmask = __mmask16((1u << nc) - 1), rmask = __mmask16((1u << nr) - 1);
  __m512 r[16], t[16], u[16], v[16];
  for (int i = 0; i < 16; ++i)
    r[i] = i < nr ? _mm512_maskz_loadu_ps(cmask, src + i * lds) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]),
                  c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // v[m], v[4+m]: rows 0-7 of columns m, 8+m and 4+m, 12+m; v[8+..]: rows 8-15
  for (int m = 0; m < 4; ++m) {
    v[m] = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
    v[4 + m] = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
    v[8 + m] = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
    v[12 + m] = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
  }
  __m512 out[16];
  for (int m = 0; m < 4; ++m) {
    out[m] = _mm512_shuffle_f32x4(v[m], v[8 + m], 0x88);
    out[8 + m] = _mm512_shuffle_f32x4(v[m], v[8 + m], 0xdd);
    out[4 + m] = _mm512_shuffle_f32x4(v[4 + m], v[12 + m], 0x88);
    out[12 + m] = _mm512_shuffle_f32x4(v[4 + m], v[12 + m], 0xdd);
  }
  for (int j = 0; j < nc; ++j) _mm512_mask_storeu_ps(dst + j * ldd, rmask, out[j]);
}
#pragma GCC diagnostic pop
#endif

}  // namespace

void transpose_block(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                     int64_t ldd) {
#if defined(__AVX512F__)
  for (int64_t i = 0; i < rows; i += 16)
    for (int64_t j = 0; j < cols; j += 16)
      tile16(src + i * lds + j, lds, int(std::min<int64_t>(16, rows - i)),
             int(std::min<int64_t>(16, cols - j)), dst + j * ldd + i, ldd);
#else
  transpose_tiles(src, lds, rows, cols, dst, ldd);
#endif
}

void transpose_block_ref(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                         int64_t ldd) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

}  // namespace qkv
