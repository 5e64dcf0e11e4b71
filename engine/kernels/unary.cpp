// Elementwise unary ops: the SIMD kernels, forward and fused backward (one functor
// per op, a vector main loop and a vector tail through a stack buffer), and
// unary_forward_ref / unary_backward_ref, their scalar oracles in double
// precision. Not here: fused activations (bias+act).
#include "engine/kernels/unary.h"

#include <algorithm>
#include <cmath>

#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {

using simd::VF;
using simd::W;

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg:     return "neg";
    case UnaryOp::exp:     return "exp";
    case UnaryOp::log:     return "log";
    case UnaryOp::sqrt:    return "sqrt";
    case UnaryOp::rsqrt:   return "rsqrt";
    case UnaryOp::abs:     return "abs";
    case UnaryOp::tanh:    return "tanh";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::relu:    return "relu";
    case UnaryOp::gelu:    return "gelu";
  }
  return "unary";
}

namespace {

// xsimd 8.1's exp returns inf from x >= 88.38 (exp(88.72) is still finite) and 0
// from x <= -88.38 (denormals remain down to -103.9). For |x| > 87 use exp(x/2)^2
// instead: x/2 is exact, the square adds ~1 ULP (2 ULP max measured over
// [-104, 89]), and elsewhere the branch is never taken.
inline VF exp_full(VF x) {
  VF r = xsimd::exp(x);
  auto far = xsimd::abs(x) > VF(87.f);
  if (xsimd::any(far)) {
    VF h = xsimd::exp(VF(0.5f) * x);
    r = xsimd::select(far, h * h, r);
  }
  return r;
}

// One functor per op. `cost` is the work per element in units of a copy, for the
// threading threshold: a transcendental is 5-15x a copy, so threads pay off sooner.
struct Neg   { static constexpr int cost = 1; static VF f(VF x) { return -x; } };
struct Exp   { static constexpr int cost = 8; static VF f(VF x) { return exp_full(x); } };
struct Log   { static constexpr int cost = 8; static VF f(VF x) { return xsimd::log(x); } };
struct Sqrt  { static constexpr int cost = 2; static VF f(VF x) { return xsimd::sqrt(x); } };
// Exact 1/sqrt (two correctly rounded steps): xsimd::rsqrt does not compile on
// AVX-512 in 8.1, and the rsqrt14 estimate (~6e-5) is too coarse for LayerNorm.
struct Rsqrt { static constexpr int cost = 2; static VF f(VF x) { return VF(1.f) / xsimd::sqrt(x); } };
struct Abs   { static constexpr int cost = 1; static VF f(VF x) { return xsimd::abs(x); } };
struct Tanh  { static constexpr int cost = 8; static VF f(VF x) { return xsimd::tanh(x); } };

// sigmoid via e = exp(-|x|) <= 1, which never overflows: 1/(1+e) for x >= 0 and
// e/(1+e) for x < 0, accurate down to the denormals (sigmoid(-100) = 3.8e-44).
// +-inf give 1 and 0; NaN stays NaN through e.
struct Sigmoid {
  static constexpr int cost = 8;
  static VF f(VF x) {
    VF e = exp_full(-xsimd::abs(x));
    VF s = VF(1.f) / (VF(1.f) + e);
    return xsimd::select(x < VF(0.f), e * s, s);
  }
};

// NaN < 0 is false, so NaN passes through (as torch.relu); max(x, 0) would drop it.
struct Relu {
  static constexpr int cost = 1;
  static VF f(VF x) { return xsimd::select(x < VF(0.f), VF(0.f), x); }
};

// Exact GELU, 0.5*x*erfc(-x/sqrt(2)). The erfc form keeps relative precision in
// the left tail, where 0.5x(1+erf) cancels to garbage for x < -5 (rel. error 100%).
// In that tail erfc(z) ~ exp(-z^2)/z turns each rounding (of z, of z*z inside
// xsimd's erfc) into ~2z^2 ULP: measured max rel. error 6e-7 for x >= -2, 2e-6
// for x >= -5, 1.5e-5 near x = -12 (where gelu ~ 1e-32). gelu(-inf) is its limit 0
// rather than -inf*0 = NaN.
struct Gelu {
  static constexpr int cost = 12;
  static VF f(VF x) {
    VF r = VF(0.5f) * x * xsimd::erfc(VF(-0.70710678118654752f) * x);
    return xsimd::select(x == VF(-INFINITY), VF(0.f), r);
  }
};

// y: [n] = f(x: [n]) over [begin, end); y may alias x. The tail goes through the
// vector op too (via a stack buffer), so an element's result depends neither on
// its position nor on the thread count.
template <class Op>
void unary_range(const float* x, float* y, int64_t i, int64_t end) {
  for (; i + 2 * W <= end; i += 2 * W) {
    VF y0 = Op::f(VF::load_unaligned(x + i));
    VF y1 = Op::f(VF::load_unaligned(x + i + W));
    y0.store_unaligned(y + i);
    y1.store_unaligned(y + i + W);
  }
  for (; i + W <= end; i += W) Op::f(VF::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < end) {
    const int rem = int(end - i);
    simd::store_partial(y + i, Op::f(simd::load_partial(x + i, rem, 0.f)), rem);
  }
}

// One even piece per thread, cut on 64-byte boundaries. Small problems skip
// OpenMP entirely: even a region with a false if() costs ~0.2 us.
template <class Op>
void unary_run(const float* x, float* y, int64_t n) {
  if (!worth_threads(n * Op::cost) || num_threads() == 1) return unary_range<Op>(x, y, 0, n);
  const int nt = num_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int t = 0; t < nt; ++t) {
    auto cut = [&](int k) { return k == nt ? n : std::min(n, (n * k / nt + 15) / 16 * 16); };
    if (cut(t) < cut(t + 1)) unary_range<Op>(x, y, cut(t), cut(t + 1));
  }
}

// The scalar oracle, in double: each result is the double value rounded once.
template <class F>
void unary_map_ref(const float* x, float* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(f(double(x[i])));
}

}  // namespace

// x: [n] -> y: [n]; y may alias x. The op is dispatched once, outside the loops.
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  switch (op) {
    case UnaryOp::neg:     return unary_run<Neg>(x, y, n);
    case UnaryOp::exp:     return unary_run<Exp>(x, y, n);
    case UnaryOp::log:     return unary_run<Log>(x, y, n);
    case UnaryOp::sqrt:    return unary_run<Sqrt>(x, y, n);
    case UnaryOp::rsqrt:   return unary_run<Rsqrt>(x, y, n);
    case UnaryOp::abs:     return unary_run<Abs>(x, y, n);
    case UnaryOp::tanh:    return unary_run<Tanh>(x, y, n);
    case UnaryOp::sigmoid: return unary_run<Sigmoid>(x, y, n);
    case UnaryOp::relu:    return unary_run<Relu>(x, y, n);
    case UnaryOp::gelu:    return unary_run<Gelu>(x, y, n);
  }
}

// x: [n] -> y: [n]; y may alias x.
void unary_forward_ref(UnaryOp op, const float* x, float* y, int64_t n) {
  switch (op) {
    case UnaryOp::neg:   return unary_map_ref(x, y, n, [](double v) { return -v; });
    case UnaryOp::exp:   return unary_map_ref(x, y, n, [](double v) { return std::exp(v); });
    case UnaryOp::log:   return unary_map_ref(x, y, n, [](double v) { return std::log(v); });
    case UnaryOp::sqrt:  return unary_map_ref(x, y, n, [](double v) { return std::sqrt(v); });
    case UnaryOp::rsqrt: return unary_map_ref(x, y, n, [](double v) { return 1.0 / std::sqrt(v); });
    case UnaryOp::abs:   return unary_map_ref(x, y, n, [](double v) { return std::fabs(v); });
    case UnaryOp::tanh:  return unary_map_ref(x, y, n, [](double v) { return std::tanh(v); });
    case UnaryOp::sigmoid:
      // Overflow of exp(-v) to inf gives 1/inf = 0, the right limit.
      return unary_map_ref(x, y, n, [](double v) { return 1.0 / (1.0 + std::exp(-v)); });
    case UnaryOp::relu:  return unary_map_ref(x, y, n, [](double v) { return v < 0 ? 0.0 : v; });
    case UnaryOp::gelu:
      return unary_map_ref(x, y, n, [](double v) {
        return v == -INFINITY ? 0.0 : 0.5 * v * std::erfc(-v / std::sqrt(2.0));
      });
  }
}

// x: [...] -> [...]
Tensor unary(UnaryOp op, const Tensor& x) {
  check(x.defined(), unary_name(op), ": undefined tensor");
  Tensor y(x.shape());
  unary_forward(op, x.data(), y.data(), x.numel());
  return y;
}

Tensor unary_ref(UnaryOp op, const Tensor& x) {
  check(x.defined(), unary_name(op), ": undefined tensor");
  Tensor y(x.shape());
  unary_forward_ref(op, x.data(), y.data(), x.numel());
  return y;
}

// ---- backward -------------------------------------------------------------------
// dx = dy * f'(x), from whichever of x and y = f(x) is cheaper (see unary.h).

namespace {

// One functor per op: which operands it reads, and dx from (x, y, dy). Operands
// it does not read arrive as zeros and are never loaded (their pointer may be null).
struct NegB {
  static constexpr bool rx = false, ry = false;
  static constexpr int cost = 1;
  static VF f(VF, VF, VF dy) { return -dy; }
};
struct ExpB {  // (e^x)' = y
  static constexpr bool rx = false, ry = true;
  static constexpr int cost = 1;
  static VF f(VF, VF y, VF dy) { return dy * y; }
};
struct LogB {  // (log x)' = 1/x
  static constexpr bool rx = true, ry = false;
  static constexpr int cost = 2;
  static VF f(VF x, VF, VF dy) { return dy / x; }
};
struct SqrtB {  // (sqrt x)' = 1/(2 sqrt x) = 0.5/y; 0.5*dy is exact, so one rounding
  static constexpr bool rx = false, ry = true;
  static constexpr int cost = 2;
  static VF f(VF, VF y, VF dy) { return (VF(0.5f) * dy) / y; }
};
struct RsqrtB {  // (x^-1/2)' = -0.5 x^-3/2 = -0.5 y^3
  static constexpr bool rx = false, ry = true;
  static constexpr int cost = 1;
  static VF f(VF, VF y, VF dy) { return (VF(-0.5f) * dy) * (y * y * y); }
};
// sign(x) with 0 at 0 and at NaN (both comparisons false).
struct AbsB {
  static constexpr bool rx = true, ry = false;
  static constexpr int cost = 1;
  static VF f(VF x, VF, VF dy) {
    return xsimd::select(x > VF(0.f), dy, xsimd::select(x < VF(0.f), -dy, VF(0.f)));
  }
};
// 1 - y^2 with one fused rounding: near |y| = 1 a separately rounded y*y is off by
// up to 3e-8, i.e. 1.5e-4 of 1 - y^2 = 2e-4 at y = 0.9999.
struct TanhB {
  static constexpr bool rx = false, ry = true;
  static constexpr int cost = 1;
  static VF f(VF, VF y, VF dy) { return dy * xsimd::fnma(y, y, VF(1.f)); }
};
// y (1 - y) as y - y*y with one rounding, for the same reason near y = 1.
struct SigmoidB {
  static constexpr bool rx = false, ry = true;
  static constexpr int cost = 1;
  static VF f(VF, VF y, VF dy) { return dy * xsimd::fnma(y, y, y); }
};
// y > 0 iff x > 0 (relu(-0) = -0 and relu(NaN) = NaN both fail it).
struct ReluB {
  static constexpr bool rx = false, ry = true;
  static constexpr int cost = 1;
  static VF f(VF, VF y, VF dy) { return xsimd::select(y > VF(0.f), dy, VF(0.f)); }
};
// gelu'(x) = Phi(x) + x phi(x), Phi(x) = 0.5 erfc(-x/sqrt2), phi(x) = exp(-x^2/2)/sqrt(2 pi).
// Both terms are tiny in the left tail (~x phi(x), relative error ~x^2 ULP as in
// the forward); at +-inf, x phi(x) is inf*0: its limit 0 is selected instead.
struct GeluB {
  static constexpr bool rx = true, ry = false;
  static constexpr int cost = 16;
  static VF f(VF x, VF, VF dy) {
    const VF cdf = VF(0.5f) * xsimd::erfc(VF(-0.70710678118654752f) * x);
    const VF pdf = xsimd::exp(VF(-0.5f) * x * x) * VF(0.39894228040143268f);
    const VF d = xsimd::select(xsimd::isinf(x), cdf, xsimd::fma(x, pdf, cdf));
    return dy * d;
  }
};

// dx: [n] over [i, end); the tail goes through the same vector op, as in the forward.
template <class Op>
void backward_range(const float* x, const float* y, const float* dy, float* dx, int64_t i,
                    int64_t end) {
  auto ld = [](bool reads, const float* p, int64_t k) {
    return reads ? VF::load_unaligned(p + k) : VF(0.f);
  };
  for (; i + W <= end; i += W)
    Op::f(ld(Op::rx, x, i), ld(Op::ry, y, i), VF::load_unaligned(dy + i)).store_unaligned(dx + i);
  if (i < end) {
    const int rem = int(end - i);
    auto lp = [&](bool reads, const float* p) {  // fill 1: the dead lanes never divide by 0
      return reads ? simd::load_partial(p + i, rem, 1.f) : VF(0.f);
    };
    const VF d = Op::f(lp(Op::rx, x), lp(Op::ry, y), simd::load_partial(dy + i, rem, 0.f));
    simd::store_partial(dx + i, d, rem);
  }
}

// Same split as unary_run: one 64-byte-aligned piece per thread, none when small.
template <class Op>
void backward_run(const float* x, const float* y, const float* dy, float* dx, int64_t n) {
  if (!worth_threads(n * Op::cost) || num_threads() == 1)
    return backward_range<Op>(x, y, dy, dx, 0, n);
  const int nt = num_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int t = 0; t < nt; ++t) {
    auto cut = [&](int k) { return k == nt ? n : std::min(n, (n * k / nt + 15) / 16 * 16); };
    if (cut(t) < cut(t + 1)) backward_range<Op>(x, y, dy, dx, cut(t), cut(t + 1));
  }
}

template <class F>
void backward_map_ref(const float* v, const float* dy, float* dx, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) dx[i] = float(double(dy[i]) * f(double(v[i])));
}

}  // namespace

bool unary_backward_reads_x(UnaryOp op) {
  return op == UnaryOp::log || op == UnaryOp::abs || op == UnaryOp::gelu;
}

bool unary_backward_reads_y(UnaryOp op) {
  return op != UnaryOp::neg && !unary_backward_reads_x(op);
}

// x, y, dy: [n] -> dx: [n]; dx may alias dy. The op is dispatched once, outside the loops.
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n) {
  if (n <= 0) return;
  switch (op) {
    case UnaryOp::neg:     return backward_run<NegB>(x, y, dy, dx, n);
    case UnaryOp::exp:     return backward_run<ExpB>(x, y, dy, dx, n);
    case UnaryOp::log:     return backward_run<LogB>(x, y, dy, dx, n);
    case UnaryOp::sqrt:    return backward_run<SqrtB>(x, y, dy, dx, n);
    case UnaryOp::rsqrt:   return backward_run<RsqrtB>(x, y, dy, dx, n);
    case UnaryOp::abs:     return backward_run<AbsB>(x, y, dy, dx, n);
    case UnaryOp::tanh:    return backward_run<TanhB>(x, y, dy, dx, n);
    case UnaryOp::sigmoid: return backward_run<SigmoidB>(x, y, dy, dx, n);
    case UnaryOp::relu:    return backward_run<ReluB>(x, y, dy, dx, n);
    case UnaryOp::gelu:    return backward_run<GeluB>(x, y, dy, dx, n);
  }
}

// The scalar oracle: f' in double from the same operand the kernel reads, times dy.
void unary_backward_ref(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                        int64_t n) {
  switch (op) {
    case UnaryOp::neg:
      for (int64_t i = 0; i < n; ++i) dx[i] = -dy[i];
      return;
    case UnaryOp::exp:   return backward_map_ref(y, dy, dx, n, [](double v) { return v; });
    case UnaryOp::log:   return backward_map_ref(x, dy, dx, n, [](double v) { return 1.0 / v; });
    case UnaryOp::sqrt:  return backward_map_ref(y, dy, dx, n, [](double v) { return 0.5 / v; });
    case UnaryOp::rsqrt:
      return backward_map_ref(y, dy, dx, n, [](double v) { return -0.5 * v * v * v; });
    case UnaryOp::abs:  // selects rather than multiplies, so dy = inf or NaN at a kink gives 0
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0 ? dy[i] : x[i] < 0 ? -dy[i] : 0.f;
      return;
    case UnaryOp::tanh:
      return backward_map_ref(y, dy, dx, n, [](double v) { return 1.0 - v * v; });
    case UnaryOp::sigmoid:
      return backward_map_ref(y, dy, dx, n, [](double v) { return v * (1.0 - v); });
    case UnaryOp::relu:
      for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0 ? dy[i] : 0.f;
      return;
    case UnaryOp::gelu:
      return backward_map_ref(x, dy, dx, n, [](double v) {
        const double cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
        if (std::isinf(v)) return cdf;
        return cdf + v * std::exp(-0.5 * v * v) * 0.39894228040143268;  // 1/sqrt(2 pi)
      });
  }
}

}  // namespace qkv
