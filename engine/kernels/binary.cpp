// placeholder: the SIMD kernels are in progress
#include "engine/kernels/binary.h"

namespace qkv {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    check(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
          " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace qkv
