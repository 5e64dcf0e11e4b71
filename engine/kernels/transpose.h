// Out-of-place matrix transpose of a strided block:
//   dst[j * ldd + i] = src[i * lds + j]   for i < rows, j < cols
// (src and dst must not overlap). The GEMM packs W^T panels with it (every
// Linear multiplies by a transposed weight, an RNN by W_hh^T), permute() uses
// it for batches of matrix transposes, and the fused attention for each
// head's K^T and V^T. A plain element loop reads one
// side with a large stride, one float per cache line touched; with AVX-512
// this moves 16x16 tiles through registers (16 row loads, 64 in-register
// shuffles, 16 row stores; masked loads and stores at the edges).
// transpose_block_ref is the plain loop it is tested against.
#pragma once
#include <cstdint>

namespace qkv {

void transpose_block(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                     int64_t ldd);
void transpose_block_ref(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                         int64_t ldd);

// The portable form, for any element type: 8x8 tiles of element copies, so
// the strided reads and the strided writes both stay within a few cache lines
// (8 lines per strided side: power-of-two row strides map them all to one L1
// set, and 8 stay within its 12 ways; 32x32 tiles thrashed). transpose_block's
// path without AVX-512, and permute()'s for int tensors.
template <class T>
void transpose_tiles(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  constexpr int64_t kTile = 8;
  for (int64_t i0 = 0; i0 < rows; i0 += kTile)
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t i1 = i0 + kTile < rows ? i0 + kTile : rows;
      const int64_t j1 = j0 + kTile < cols ? j0 + kTile : cols;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) dst[j * ldd + i] = src[i * lds + j];
    }
}

}  // namespace qkv
