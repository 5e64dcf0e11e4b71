// Reductions along one axis: sum, mean, max, var and argmax, plus sum_all.
// x is viewed as [outer, n, inner] around the axis. inner == 1 reduces
// contiguous rows (SIMD along n); inner > 1 reduces columns (SIMD across the
// contiguous inner axis, walking the n rows). Not here: multi-axis reductions.
#include "engine/kernels/reduce.h"

#include "engine/kernels/row_moments.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;
using VI = xsimd::batch<int32_t>;
static_assert(VI::size == VF::size, "argmax keeps one int32 index per float lane");

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- geometry ---------------------------------------------------------------

struct Geometry {
  int64_t outer = 1, n = 1, inner = 1;
  Shape out_shape;
};

// Rank 0 is read as one element: axis 0 or -1 reduces it to a scalar (torch
// accepts both too); keepdim has no axis to keep, so the result stays [].
Geometry geometry(const Tensor& x, int64_t axis, bool keepdim, const char* op) {
  check(x.defined(), op, ": undefined tensor");
  Geometry g;
  if (x.dim() == 0) {
    check(axis == 0 || axis == -1, op, ": axis ", axis, " out of range for a scalar (shape [])",
          " (expected 0 or -1)");
    return g;
  }
  const int a = normalize_axis(axis, x.dim(), op);
  const Shape& s = x.shape();
  for (int i = 0; i < a; ++i) g.outer *= s[i];
  g.n = s[a];
  for (int64_t i = a + 1; i < x.dim(); ++i) g.inner *= s[i];
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i != a)
      g.out_shape.push_back(s[i]);
    else if (keepdim)
      g.out_shape.push_back(1);
  }
  return g;
}

// ---- row kernels (inner == 1): SIMD along contiguous n -----------------------
// Sums and centred moments come from engine/kernels/row_moments.h.

// NaN-propagating max step (torch): take v when it is larger or NaN; a NaN in
// `a` stays because no comparison with it is true. Correct whichever operand
// the hardware max returns on NaN, which xsimd::max leaves unspecified.
inline VF max_step(VF a, VF v) { return xsimd::select((v > a) | xsimd::isnan(v), v, a); }
inline float max_step(float a, float v) { return (v > a || std::isnan(v)) ? v : a; }

float hmax_nan(VF v) {
  alignas(64) float t[W];
  v.store_aligned(t);
  float m = t[0];
  for (int i = 1; i < W; ++i) m = max_step(m, t[i]);
  return m;
}

float row_max(const float* p, int64_t n) {  // n >= 1
  VF m0(kNegInf), m1(kNegInf), m2(kNegInf), m3(kNegInf);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    m0 = max_step(m0, VF::load_unaligned(p + i));
    m1 = max_step(m1, VF::load_unaligned(p + i + W));
    m2 = max_step(m2, VF::load_unaligned(p + i + 2 * W));
    m3 = max_step(m3, VF::load_unaligned(p + i + 3 * W));
  }
  for (; i + W <= n; i += W) m0 = max_step(m0, VF::load_unaligned(p + i));
  if (i < n) m1 = max_step(m1, simd::load_partial(p + i, int(n - i), kNegInf));
  return hmax_nan(max_step(max_step(m0, m1), max_step(m2, m3)));
}

// First index holding m (or the first NaN when m is NaN): a second, usually
// short pass, cheaper than carrying per-lane indices through the max loop.
int64_t row_find(const float* p, int64_t n, float m) {
  const bool nan = std::isnan(m);
  const VF vm(m);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const VF v = VF::load_unaligned(p + i);
    if (xsimd::any(nan ? xsimd::isnan(v) : v == vm)) break;
  }
  for (; i < n; ++i)
    if (nan ? std::isnan(p[i]) : p[i] == m) return i;
  return n - 1;  // unreachable: m was read from p
}

// Divisor n - correction, clamped at 0 as torch does: n <= correction gives
// m2 / 0, i.e. NaN when all terms agree (m2 = 0, e.g. n = 1) and +inf otherwise.
float var_from(double m2, int64_t n, int64_t correction) {
  return float(m2 / double(std::max<int64_t>(n - correction, 0)));
}

// sum((x - mean)^2) = s2 - s1^2 / n with s1 = sum(d), s2 = sum(d^2), d = x - mean0:
// removes the rounding error of mean0 (s1 is tiny) and nothing cancels.
float row_var(const float* p, int64_t n, int64_t correction) {  // n >= 1
  const rows::Moments m = rows::centred(p, n);
  const double s1 = m.sum_d, s2 = m.sum_d2;
  return var_from(std::max(s2 - s1 * s1 / double(n), 0.0), n, correction);
}

// ---- column kernels (inner > 1): SIMD across contiguous inner ----------------
// A block of <= 512 columns (2 KiB of accumulators) stays in L1 (48 KiB) while
// the n rows of that block stream past; blocks are the unit of parallel work.
constexpr int64_t kColBlock = 512;
// Column sums add 64 rows into a partial block, then the partial into the total:
// the error grows like n/64 + 64 instead of n.
constexpr int64_t kRowChunk = 64;

// base: [n rows, stride inner], columns [0, len); each column's terms in row order.
inline void add_row(float* acc, const float* row, int64_t len) {
  int64_t j = 0;
  for (; j + W <= len; j += W)
    (VF::load_unaligned(acc + j) + VF::load_unaligned(row + j)).store_unaligned(acc + j);
  for (; j < len; ++j) acc[j] += row[j];
}

void col_sum(const float* base, int64_t n, int64_t inner, int64_t len, float* dst) {
  alignas(64) float part[kColBlock];
  std::fill(dst, dst + len, 0.f);
  for (int64_t k0 = 0; k0 < n; k0 += kRowChunk) {
    std::fill(part, part + len, 0.f);
    for (int64_t k = k0; k < std::min(n, k0 + kRowChunk); ++k) add_row(part, base + k * inner, len);
    add_row(dst, part, len);
  }
}

void col_max(const float* base, int64_t n, int64_t inner, int64_t len, float* dst) {
  std::copy(base, base + len, dst);
  for (int64_t k = 1; k < n; ++k) {
    const float* row = base + k * inner;
    int64_t j = 0;
    for (; j + W <= len; j += W)
      max_step(VF::load_unaligned(dst + j), VF::load_unaligned(row + j)).store_unaligned(dst + j);
    for (; j < len; ++j) dst[j] = max_step(dst[j], row[j]);
  }
}

void col_var(const float* base, int64_t n, int64_t inner, int64_t len, int64_t correction,
             float* dst) {
  alignas(64) float mu[kColBlock], s1[kColBlock] = {}, s2[kColBlock] = {};
  col_sum(base, n, inner, len, mu);
  for (int64_t j = 0; j < len; ++j) mu[j] /= float(n);
  for (int64_t k = 0; k < n; ++k) {
    const float* row = base + k * inner;
    int64_t j = 0;
    for (; j + W <= len; j += W) {
      const VF d = VF::load_unaligned(row + j) - VF::load_aligned(mu + j);
      (VF::load_aligned(s1 + j) + d).store_aligned(s1 + j);
      xsimd::fma(d, d, VF::load_aligned(s2 + j)).store_aligned(s2 + j);
    }
    for (; j < len; ++j) {
      const float d = row[j] - mu[j];
      s1[j] += d;
      s2[j] += d * d;
    }
  }
  for (int64_t j = 0; j < len; ++j)
    dst[j] =
        var_from(std::max(double(s2[j]) - double(s1[j]) * s1[j] / double(n), 0.0), n, correction);
}

// Per column: best value so far and its row. Strict > keeps the first index of
// the max; a NaN replaces a non-NaN best and then nothing replaces it (torch).
void col_argmax(const float* base, int64_t n, int64_t inner, int64_t len, int32_t* dst) {
  alignas(64) float best[kColBlock];
  std::copy(base, base + len, best);
  std::fill(dst, dst + len, 0);
  for (int64_t k = 1; k < n; ++k) {
    const float* row = base + k * inner;
    const VI vk = VI(int32_t(k));
    int64_t j = 0;
    for (; j + W <= len; j += W) {
      const VF b = VF::load_aligned(best + j), v = VF::load_unaligned(row + j);
      const auto upd = (v > b) | (xsimd::isnan(v) & ~xsimd::isnan(b));
      xsimd::select(upd, v, b).store_aligned(best + j);
      xsimd::select(xsimd::bool_cast(upd), vk, VI::load_unaligned(dst + j))
          .store_unaligned(dst + j);
    }
    for (; j < len; ++j) {
      if (row[j] > best[j] || (std::isnan(row[j]) && !std::isnan(best[j]))) {
        best[j] = row[j];
        dst[j] = int32_t(k);
      }
    }
  }
}

}  // namespace

// ---- public -----------------------------------------------------------------

const char* reduce_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::mean:
      return "mean";
    case ReduceOp::max:
      return "max";
    case ReduceOp::var:
      return "var";
  }
  return "reduce";
}

// x: [outer, n, inner] -> out: [outer, inner] (shape per keepdim).
// Empty axis (n = 0): sum 0, mean and var NaN (0/0, as torch); max throws.
Tensor reduce(ReduceOp op, const Tensor& x, int64_t axis, bool keepdim, int64_t correction) {
  const char* name = reduce_name(op);
  const Geometry g = geometry(x, axis, keepdim, name);
  const int64_t outer = g.outer, n = g.n, inner = g.inner;
  check(op != ReduceOp::max || n > 0, name, ": cannot reduce over the empty axis ", axis,
        " of shape ", x.shape());
  Tensor out(g.out_shape);
  if (out.numel() == 0) return out;
  if (n == 0) {
    out.fill(op == ReduceOp::sum ? 0.f : kNaN);
    return out;
  }
  const float* px = x.data();
  float* po = out.data();
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (worth_threads(outer * n)) num_threads(num_threads())
    for (int64_t o = 0; o < outer; ++o) {
      const float* p = px + o * n;
      switch (op) {
        case ReduceOp::sum:
          po[o] = rows::sum(p, n);
          break;
        case ReduceOp::mean:
          po[o] = rows::sum(p, n) / float(n);
          break;
        case ReduceOp::max:
          po[o] = row_max(p, n);
          break;
        case ReduceOp::var:
          po[o] = row_var(p, n, correction);
          break;
      }
    }
    return out;
  }
  const int64_t nb = (inner + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (worth_threads(outer * n * inner)) \
    num_threads(num_threads())
  for (int64_t t = 0; t < outer * nb; ++t) {
    const int64_t o = t / nb, j0 = (t % nb) * kColBlock, len = std::min(kColBlock, inner - j0);
    const float* base = px + o * n * inner + j0;
    float* dst = po + o * inner + j0;
    switch (op) {
      case ReduceOp::sum:
        col_sum(base, n, inner, len, dst);
        break;
      case ReduceOp::mean:
        col_sum(base, n, inner, len, dst);
        for (int64_t j = 0; j < len; ++j) dst[j] /= float(n);
        break;
      case ReduceOp::max:
        col_max(base, n, inner, len, dst);
        break;
      case ReduceOp::var:
        col_var(base, n, inner, len, correction, dst);
        break;
    }
  }
  return out;
}

// Scalar oracle: one double accumulator per output, two-pass variance.
Tensor reduce_ref(ReduceOp op, const Tensor& x, int64_t axis, bool keepdim, int64_t correction) {
  const char* name = reduce_name(op);
  const Geometry g = geometry(x, axis, keepdim, name);
  check(op != ReduceOp::max || g.n > 0, name, ": cannot reduce over the empty axis ", axis,
        " of shape ", x.shape());
  Tensor out(g.out_shape);
  const float* px = x.data();
  for (int64_t o = 0; o < g.outer; ++o) {
    for (int64_t j = 0; j < g.inner; ++j) {
      auto at = [&](int64_t k) { return px[(o * g.n + k) * g.inner + j]; };
      double r = 0;
      if (op == ReduceOp::max) {
        float m = at(0);
        for (int64_t k = 1; k < g.n; ++k)
          if (!std::isnan(m) && (at(k) > m || std::isnan(at(k)))) m = at(k);
        r = m;
      } else {
        double s = 0;
        for (int64_t k = 0; k < g.n; ++k) s += at(k);
        r = op == ReduceOp::sum ? s : s / double(g.n);
        if (op == ReduceOp::var) {
          double m2 = 0;
          for (int64_t k = 0; k < g.n; ++k) m2 += (at(k) - r) * (at(k) - r);
          r = m2 / double(std::max<int64_t>(g.n - correction, 0));
        }
      }
      out.data()[o * g.inner + j] = float(r);
    }
  }
  return out;
}

IntTensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  const Geometry g = geometry(x, axis, keepdim, "argmax");
  const int64_t outer = g.outer, n = g.n, inner = g.inner;
  check(n > 0, "argmax: cannot reduce over the empty axis ", axis, " of shape ", x.shape());
  check(n <= std::numeric_limits<int32_t>::max(), "argmax: axis ", axis, " of shape ", x.shape(),
        " is too long for int32 indices");
  IntTensor out(g.out_shape);
  const float* px = x.data();
  int32_t* po = out.data();
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (worth_threads(outer * n)) num_threads(num_threads())
    for (int64_t o = 0; o < outer; ++o) {
      const float* p = px + o * n;
      po[o] = int32_t(row_find(p, n, row_max(p, n)));
    }
    return out;
  }
  const int64_t nb = (inner + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (worth_threads(outer * n * inner)) \
    num_threads(num_threads())
  for (int64_t t = 0; t < outer * nb; ++t) {
    const int64_t o = t / nb, j0 = (t % nb) * kColBlock, len = std::min(kColBlock, inner - j0);
    col_argmax(px + o * n * inner + j0, n, inner, len, po + o * inner + j0);
  }
  return out;
}

IntTensor argmax_ref(const Tensor& x, int64_t axis, bool keepdim) {
  const Geometry g = geometry(x, axis, keepdim, "argmax");
  check(g.n > 0, "argmax: cannot reduce over the empty axis ", axis, " of shape ", x.shape());
  IntTensor out(g.out_shape);
  const float* px = x.data();
  for (int64_t o = 0; o < g.outer; ++o) {
    for (int64_t j = 0; j < g.inner; ++j) {
      int64_t best = 0;
      for (int64_t k = 1; k < g.n; ++k) {
        const float v = px[(o * g.n + k) * g.inner + j], b = px[(o * g.n + best) * g.inner + j];
        if (std::isnan(b)) break;
        if (v > b || std::isnan(v)) best = k;
      }
      out.data()[o * g.inner + j] = int32_t(best);
    }
  }
  return out;
}

// Chunks of 64K floats are summed in parallel (each pairwise), then combined in
// double in chunk order: the result does not depend on the thread count.
float sum_all(const Tensor& x) {
  check(x.defined(), "sum_all: undefined tensor");
  constexpr int64_t kChunk = int64_t(1) << 16;
  const int64_t n = x.numel(), chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(size_t(chunks), 0.0);
  const float* p = x.data();
#pragma omp parallel for schedule(static) if (worth_threads(n)) num_threads(num_threads())
  for (int64_t c = 0; c < chunks; ++c)
    part[size_t(c)] = rows::sum(p + c * kChunk, std::min(kChunk, n - c * kChunk));
  double s = 0;
  for (double v : part) s += v;
  return float(s);
}

}  // namespace qkv
