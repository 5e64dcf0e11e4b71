// Reductions along one axis (negative axes count from the end), with keepdim:
// sum, mean, max, variance (with Bessel's correction by default, as torch.var)
// and argmax (first index of the maximum; NaN counts as the maximum, as torch).
// Each SIMD kernel has a scalar *_ref oracle with the same signature.
#pragma once
#include "engine/tensor.h"

namespace qkv {

enum class ReduceOp { sum, mean, max, var };
const char* reduce_name(ReduceOp op);

// correction is used by var only: divisor = n - correction (0 = biased).
Tensor reduce(ReduceOp op, const Tensor& x, int64_t axis, bool keepdim = false,
              int64_t correction = 1);
Tensor reduce_ref(ReduceOp op, const Tensor& x, int64_t axis, bool keepdim = false,
                  int64_t correction = 1);
IntTensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);
IntTensor argmax_ref(const Tensor& x, int64_t axis, bool keepdim = false);

inline Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false) {
  return reduce(ReduceOp::sum, x, axis, keepdim);
}
inline Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false) {
  return reduce(ReduceOp::mean, x, axis, keepdim);
}
inline Tensor max(const Tensor& x, int64_t axis, bool keepdim = false) {
  return reduce(ReduceOp::max, x, axis, keepdim);
}
inline Tensor var(const Tensor& x, int64_t axis, bool keepdim = false, int64_t correction = 1) {
  return reduce(ReduceOp::var, x, axis, keepdim, correction);
}
// Sum of all elements (pairwise/blocked, so error grows slowly with n).
float sum_all(const Tensor& x);

}  // namespace qkv
