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

}  // namespace qkv
