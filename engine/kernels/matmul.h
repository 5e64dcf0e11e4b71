// Tensor-level matrix products on top of gemm().
#pragma once
#include "engine/tensor.h"

namespace qkv {

// a: [..., M, K] ([..., K, M] if ta), b: [..., K, N] ([..., N, K] if tb)
// -> [..., M, N]. Leading (batch) dimensions broadcast; rank-2 operands are
// shared by every batch entry (a Linear weight, say).
Tensor matmul(const Tensor& a, const Tensor& b, bool ta = false, bool tb = false);
Tensor matmul_ref(const Tensor& a, const Tensor& b, bool ta = false, bool tb = false);

}  // namespace qkv
