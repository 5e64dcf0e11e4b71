// Broadcasting binary ops (add, sub, mul, div, maximum, minimum): the SIMD
// kernel and binary_ref, its scalar oracle, side by side.
// binary() first collapses the broadcast into rows x a contiguous run along which
// each operand is either contiguous or one repeated scalar, so [64,128,256] + [256]
// is 8192 rows of a 256-long vector-vector run and a same-shape op is one flat run.
#include "engine/kernels/binary.h"

#include <algorithm>
#include <cmath>

#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {

using simd::VF;
using simd::W;

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:     return "add";
    case BinaryOp::sub:     return "sub";
    case BinaryOp::mul:     return "mul";
    case BinaryOp::div:     return "div";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
  }
  return "binary";
}

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

// ---- the ops: one functor each, a vector and a scalar form that agree bit for bit

namespace {

struct Add { static VF f(VF a, VF b) { return a + b; } static float f(float a, float b) { return a + b; } };
struct Sub { static VF f(VF a, VF b) { return a - b; } static float f(float a, float b) { return a - b; } };
struct Mul { static VF f(VF a, VF b) { return a * b; } static float f(float a, float b) { return a * b; } };
struct Div { static VF f(VF a, VF b) { return a / b; } static float f(float a, float b) { return a / b; } };

// maximum/minimum propagate NaN from either side, as torch does (std::max and
// the bare max instruction would return one operand or the other).
struct Max {
  static VF f(VF a, VF b) { return xsimd::select(xsimd::isnan(a) || a > b, a, b); }
  static float f(float a, float b) { return std::isnan(a) || a > b ? a : b; }
};
struct Min {
  static VF f(VF a, VF b) { return xsimd::select(xsimd::isnan(a) || a < b, a, b); }
  static float f(float a, float b) { return std::isnan(a) || a < b ? a : b; }
};

// ---- inner runs: y[i] = a[i] op b[i], i in [0, n); SA/SB = 0 means "one scalar"

template <class Op, int SA, int SB>
void run_kernel(const float* a, const float* b, float* y, int64_t n) {
  static_assert(SA == 1 || SB == 1, "a stride-0 run on both sides is a size-1 dim, dropped");
  auto ld = [](const float* p, int64_t i, int s) {
    return s ? VF::load_unaligned(p + i) : VF(p[0]);
  };
  int64_t i = 0;
  // 4 vectors per trip: enough loads in flight to stream at memory bandwidth.
  for (; i + 4 * W <= n; i += 4 * W) {
    VF y0 = Op::f(ld(a, i, SA), ld(b, i, SB));
    VF y1 = Op::f(ld(a, i + W, SA), ld(b, i + W, SB));
    VF y2 = Op::f(ld(a, i + 2 * W, SA), ld(b, i + 2 * W, SB));
    VF y3 = Op::f(ld(a, i + 3 * W, SA), ld(b, i + 3 * W, SB));
    y0.store_unaligned(y + i);
    y1.store_unaligned(y + i + W);
    y2.store_unaligned(y + i + 2 * W);
    y3.store_unaligned(y + i + 3 * W);
  }
  for (; i + W <= n; i += W) Op::f(ld(a, i, SA), ld(b, i, SB)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = Op::f(a[SA * i], b[SB * i]);
}

// ---- the collapsed problem ---------------------------------------------------

// out = rows x run. Along the run a and b advance by sa/sb (0 or 1); from one row
// to the next they advance like an odometer over `outer` with strides oa/ob.
struct Plan {
  int64_t run = 1;
  int sa = 1, sb = 1;
  Shape outer;                  // collapsed outer dims, outermost first
  std::vector<int64_t> oa, ob;  // element strides of a and b over `outer` (0 = broadcast)
  int64_t rows = 1;
};

Plan make_plan(const Shape& out, const Shape& as, const Shape& bs) {
  const size_t n = out.size();
  // Right-aligned element strides of an operand in the output's rank; 0 where it broadcasts.
  auto strides = [&](const Shape& s) {
    std::vector<int64_t> st(n, 0);
    int64_t acc = 1;
    for (size_t k = 0; k < s.size(); ++k) {
      size_t i = n - 1 - k;
      int64_t d = s[s.size() - 1 - k];
      st[i] = d == 1 ? 0 : acc;
      acc *= d;
    }
    return st;
  };
  const std::vector<int64_t> sta = strides(as), stb = strides(bs);
  struct Dim { int64_t size, sa, sb; };
  std::vector<Dim> dims;
  for (size_t i = 0; i < n; ++i) {
    if (out[i] == 1) continue;  // a size-1 output dim moves nothing
    Dim d{out[i], sta[i], stb[i]};
    // Merge into the previous (outer) dim when stepping it equals running off the
    // end of this one, for both operands: same broadcast pattern, contiguous.
    if (!dims.empty() && dims.back().sa == d.sa * d.size && dims.back().sb == d.sb * d.size) {
      dims.back() = {dims.back().size * d.size, d.sa, d.sb};
    } else {
      dims.push_back(d);
    }
  }
  Plan p;
  if (dims.empty()) return p;  // one element
  p.run = dims.back().size;
  p.sa  = int(dims.back().sa);
  p.sb  = int(dims.back().sb);
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    p.outer.push_back(dims[i].size);
    p.oa.push_back(dims[i].sa);
    p.ob.push_back(dims[i].sb);
    p.rows *= dims[i].size;
  }
  return p;
}

// Offsets of a and b at the start of a row; next() steps to the following row.
struct RowWalker {
  const Plan& p;
  std::vector<int64_t> idx;
  int64_t off_a = 0, off_b = 0;

  RowWalker(const Plan& plan, int64_t row) : p(plan), idx(plan.outer.size(), 0) {
    for (size_t k = idx.size(); k-- > 0;) {
      idx[k] = row % p.outer[k];
      row /= p.outer[k];
      off_a += idx[k] * p.oa[k];
      off_b += idx[k] * p.ob[k];
    }
  }
  void next() {
    for (size_t k = idx.size(); k-- > 0;) {
      off_a += p.oa[k];
      off_b += p.ob[k];
      if (++idx[k] < p.outer[k]) return;
      off_a -= p.oa[k] * p.outer[k];
      off_b -= p.ob[k] * p.outer[k];
      idx[k] = 0;
    }
  }
};

// y: [rows*run] = a op b per the plan, over the flat output range [begin, end),
// which may start and end mid-row.
template <class Op, int SA, int SB>
void run_range(const Plan& p, const float* a, const float* b, float* y, int64_t begin, int64_t end) {
  int64_t col = begin % p.run;
  RowWalker w(p, begin / p.run);
  while (begin < end) {
    int64_t len = std::min(p.run - col, end - begin);
    run_kernel<Op, SA, SB>(a + w.off_a + SA * col, b + w.off_b + SB * col, y + begin, len);
    begin += len;
    col = 0;
    w.next();
  }
}

// One even piece of the flat output per thread, cut on 64-byte boundaries so
// threads never share a cache line; cutting mid-row keeps 2 threads busy even for
// 1-3 long rows. Small problems skip OpenMP entirely: even a region with a false
// if() clause costs ~0.2 us, as much as the whole kernel on 2K elements.
template <class Op, int SA, int SB>
void run_plan(const Plan& p, const float* a, const float* b, float* y) {
  const int64_t total = p.rows * p.run;
  if (!worth_threads(total) || num_threads() == 1) return run_range<Op, SA, SB>(p, a, b, y, 0, total);
  const int nt = num_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int t = 0; t < nt; ++t) {
    auto cut = [&](int k) { return k == nt ? total : std::min(total, (total * k / nt + 15) / 16 * 16); };
    if (cut(t) < cut(t + 1)) run_range<Op, SA, SB>(p, a, b, y, cut(t), cut(t + 1));
  }
}

template <class Op>
void run_op(const Plan& p, const float* a, const float* b, float* y) {
  if (p.sa && p.sb) return run_plan<Op, 1, 1>(p, a, b, y);
  if (p.sa)         return run_plan<Op, 1, 0>(p, a, b, y);
  return run_plan<Op, 0, 1>(p, a, b, y);
}

// y: out = a op b, a/b broadcast to `out` (already checked). The op is chosen once here.
void binary_into(BinaryOp op, const Shape& out, const Tensor& a, const Tensor& b, float* y) {
  if (numel_of(out) == 0) return;
  const Plan p = make_plan(out, a.shape(), b.shape());
  switch (op) {
    case BinaryOp::add:     return run_op<Add>(p, a.data(), b.data(), y);
    case BinaryOp::sub:     return run_op<Sub>(p, a.data(), b.data(), y);
    case BinaryOp::mul:     return run_op<Mul>(p, a.data(), b.data(), y);
    case BinaryOp::div:     return run_op<Div>(p, a.data(), b.data(), y);
    case BinaryOp::maximum: return run_op<Max>(p, a.data(), b.data(), y);
    case BinaryOp::minimum: return run_op<Min>(p, a.data(), b.data(), y);
  }
}

void check_defined(BinaryOp op, const Tensor& a, const Tensor& b) {
  check(a.defined() && b.defined(), binary_name(op), ": undefined tensor operand");
}

}  // namespace

// a: [...A], b: [...B] -> out: broadcast([...A], [...B])
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_defined(op, a, b);
  Tensor out(broadcast_shapes(a.shape(), b.shape(), binary_name(op)));
  binary_into(op, out.shape(), a, b, out.data());
  return out;
}

// a: [...A] (kept), b: [...B] broadcastable to [...A]
void binary_inplace(BinaryOp op, Tensor& a, const Tensor& b) {
  check_defined(op, a, b);
  check(broadcast_shapes(a.shape(), b.shape(), binary_name(op)) == a.shape(), binary_name(op),
        " (in place): shape ", b.shape(), " does not broadcast to ", a.shape());
  // Element i of a is read only to write element i, so b == a is safe; any other
  // overlap (b a row of a, say) would read values already overwritten.
  const bool overlaps = b.shares_storage(a) && b.numel() > 0 &&
                        !(b.data() == a.data() && b.numel() == a.numel());
  binary_into(op, a.shape(), a, overlaps ? b.clone() : b, a.data());
}

// ---- scalar oracle -----------------------------------------------------------

// Explicit multi-index broadcasting, one element at a time: slow and obviously right.
Tensor binary_ref(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_defined(op, a, b);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), binary_name(op));
  Tensor out(out_shape);
  const size_t n = out_shape.size();
  // Flat offset into operand s of the output multi-index idx (size-1 dims stretch).
  auto offset = [&](const Shape& s, const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t k = 0; k < s.size(); ++k) {
      int64_t i = idx[n - s.size() + k];
      off = off * s[k] + (s[k] == 1 ? 0 : i);
    }
    return off;
  };
  auto apply = [op](float x, float y) -> float {
    switch (op) {
      case BinaryOp::add: return x + y;
      case BinaryOp::sub: return x - y;
      case BinaryOp::mul: return x * y;
      case BinaryOp::div: return x / y;
      case BinaryOp::maximum:
        if (std::isnan(x) || std::isnan(y)) return std::isnan(x) ? x : y;
        return x > y ? x : y;
      case BinaryOp::minimum:
        if (std::isnan(x) || std::isnan(y)) return std::isnan(x) ? x : y;
        return x < y ? x : y;
    }
    return 0.f;
  };
  std::vector<int64_t> idx(n, 0);
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t r = i;
    for (size_t k = n; k-- > 0;) {
      idx[k] = r % out_shape[k];
      r /= out_shape[k];
    }
    out.data()[i] = apply(a.data()[offset(a.shape(), idx)], b.data()[offset(b.shape(), idx)]);
  }
  return out;
}

}  // namespace qkv
