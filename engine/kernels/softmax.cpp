// Softmax and log-softmax over the last axis, forward and backward, and the
// fused cross-entropy pair; one row at a time (threads split rows), or, for
// large tensors, three rows in one streamed loop with non-temporal stores.
// Standalone kernels: the online (running max + rescaled sum) form belongs to
// the fused attention kernel, where the row is never stored.

#include "engine/kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "engine/kernels/row_moments.h"
#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Row max with 4 accumulators. A NaN may be dropped here (the hardware max is
// not NaN-propagating), but exp(NaN - m) then makes the sum, and so the whole
// row, NaN, as torch gives.
float row_max(const float* x, int64_t n) {
  VF m0(kNegInf), m1(kNegInf), m2(kNegInf), m3(kNegInf);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    m0 = xsimd::max(m0, VF::load_unaligned(x + i));
    m1 = xsimd::max(m1, VF::load_unaligned(x + i + W));
    m2 = xsimd::max(m2, VF::load_unaligned(x + i + 2 * W));
    m3 = xsimd::max(m3, VF::load_unaligned(x + i + 3 * W));
  }
  for (; i + W <= n; i += W) m0 = xsimd::max(m0, VF::load_unaligned(x + i));
  if (i < n) m1 = xsimd::max(m1, simd::load_partial(x + i, int(n - i), kNegInf));
  return simd::hmax(xsimd::max(xsimd::max(m0, m1), xsimd::max(m2, m3)));
}

// exp(x - m) for the rows of max m: simd::exp2 of t = x log2e - m log2e.
// Fused: t in one FMA. m log2e is rounded once per row, so every term of the
// row is scaled alike, which the normalisation cancels; it must not overflow
// (|m| < 1e38). Not fused: t = (x - m) log2e, exactly 0 at the max (the
// log forms need that: a one-element row gives exactly 0).
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2 = 0.693147180559945309f;

template <bool Fused>
struct ShiftedExp {
  float max, c;  // c = max log2e rounded
  VF vm, vc;
  explicit ShiftedExp(float m) : max(m), c(m * kLog2e), vm(m), vc(c) {}
  VF operator()(VF x) const {
    if constexpr (Fused)
      return simd::exp2(simd::fms(x, VF(kLog2e), vc));
    else
      return simd::exp2((x - vm) * VF(kLog2e));
  }
  // log of the factor 2^d every fused term carries, d = max log2e - c (exact
  // by an FMA): log(sum of the terms) - log_factor() = log(sum exp(x - max)).
  float log_factor() const { return Fused ? std::fma(max, kLog2e, -c) * kLn2 : 0.f; }
};

bool fusable(float m) { return std::fabs(m) < 1e38f; }

// Sum of exp(x - m); with Store, also y = exp(x - m). Tail lanes are filled
// with -inf so they add exp(-inf) = 0 (when m = -inf the row is all -inf and
// NaN anyway: -inf - -inf).
// `next` (the next row of x) is prefetched here, one line per line consumed:
// this pass is exp-bound and otherwise leaves DRAM idle, so the next row's
// max pass would wait on its misses. Measured at 4096x1024, one thread: 1.80
// -> 1.43 ms (softmax), 2.15 -> 1.50 ms (log-softmax); prefetching y for
// writing or two rows ahead gained nothing more.
template <bool Store, class Exp>
float row_exp_sum(const float* x, float* y, int64_t n, Exp exp, const float* next) {
  constexpr int kLine = 64 / int(sizeof(float));
  VF s0(0.f), s1(0.f), s2(0.f), s3(0.f);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    for (int k = 0; k < 4 * W; k += kLine) __builtin_prefetch(next + i + k, 0, 3);
    const VF e0 = exp(VF::load_unaligned(x + i));
    const VF e1 = exp(VF::load_unaligned(x + i + W));
    const VF e2 = exp(VF::load_unaligned(x + i + 2 * W));
    const VF e3 = exp(VF::load_unaligned(x + i + 3 * W));
    if constexpr (Store) {
      e0.store_unaligned(y + i);
      e1.store_unaligned(y + i + W);
      e2.store_unaligned(y + i + 2 * W);
      e3.store_unaligned(y + i + 3 * W);
    }
    s0 += e0;
    s1 += e1;
    s2 += e2;
    s3 += e3;
  }
  for (; i + W <= n; i += W) {
    const VF e = exp(VF::load_unaligned(x + i));
    if constexpr (Store) e.store_unaligned(y + i);
    s0 += e;
  }
  if (i < n) {
    const VF e = exp(simd::load_partial(x + i, int(n - i), kNegInf));
    if constexpr (Store) simd::store_partial(y + i, e, int(n - i));
    s1 += e;
  }
  return simd::hsum((s0 + s1) + (s2 + s3));
}

// Three passes: max; e = exp(x - max), stored and summed; y = e * (1/sum).
// exp runs once per element. A standalone online softmax (running max and
// rescaled sum in one pass, then exp again for the output) needs ~2.25 exp per
// element and measured 1.2-1.6x slower for rows of 64..64K floats (perf-notes
// 4.1); the 2nd and 3rd passes re-read a row that is still in L1/L2.
void softmax_row(const float* x, float* y, int64_t n, const float* next) {
  const float m = row_max(x, n);
  const float s = fusable(m) ? row_exp_sum<true>(x, y, n, ShiftedExp<true>(m), next)
                             : row_exp_sum<true>(x, y, n, ShiftedExp<false>(m), next);
  const VF r(1.f / s);  // exact division once; xsimd::reciprocal is only ~14 bits
  int64_t i = 0;
  for (; i + W <= n; i += W) (VF::load_unaligned(y + i) * r).store_unaligned(y + i);
  const float rs = 1.f / s;
  for (; i < n; ++i) y[i] *= rs;
}

// y = (x - max) - log(sum exp(x - max)): subtracting max first keeps the
// result exact-ish for large logits (max + lse in float would round at 1e4 to
// ~5e-4). The sum pass stores nothing: the last pass rebuilds y from x with
// two subtractions, no dearer than reloading a stored exp.
void log_softmax_row(const float* x, float* y, int64_t n, const float* next) {
  const float m = row_max(x, n);
  const float lse = std::log(row_exp_sum<false>(x, nullptr, n, ShiftedExp<false>(m), next));
  const VF vm(m), vl(lse);
  int64_t i = 0;
  for (; i + W <= n; i += W) ((VF::load_unaligned(x + i) - vm) - vl).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = (x[i] - m) - lse;
}

// ---- streamed rows (large tensors) ----------------------------------------------
// Above kStreamBytes of output the rows come from and go to memory, and the
// per-row passes above leave it idle while exp runs (measured: a 4096x1024
// softmax took the compute-only time plus nearly the whole memory time).
// simd::stream_rows overlaps them: step r takes the max of row r+1 (the only
// pass that reads memory; row r+2 is prefetched), the exp pass of row r and
// the output of row r-1. Softmax keeps row r's exps in a two-row ring that
// stays in L1. Used when y is 64-byte aligned and n % W == 0 (every row then
// starts aligned), n small enough for the ring; otherwise the per-row path.
constexpr int64_t kStreamMaxRow = 16384;  // ring: 2 rows, <= 128 KiB in L2

bool streamed(const float* y, int64_t rows, int64_t n) {
  return simd::stream_worth(y, rows, n) && n <= kStreamMaxRow;
}

// Step r of softmax: m is row r's max (made by step r-1), then row r+1's;
// inv is row r-1's 1/sum, then row r's. ring: 2 rows of n, W floats apart
// (at n floats apart, a 4 KiB multiple, every load of one row would wait
// behind the store to the other: 4K aliasing).
template <class P, bool Fused>
void softmax_step(const float* x, float* y, int64_t r, int64_t r1, int64_t n, float* ring, float& m,
                  float& inv) {
  const simd::StepRows<P> rs(x, r, r1, n);
  float* ec = ring + (r & 1) * (n + W);              // row r's exps
  const float* ep = ring + ((r + 1) & 1) * (n + W);  // row r-1's
  float* yp = P::prev ? y + (r - 1) * n : nullptr;
  const ShiftedExp<Fused> exp(m);
  const VF vi(inv);
  VF mx(kNegInf), s(0.f);
  for (int64_t i = 0; i < n; i += W) {
    if constexpr (P::next) {
      __builtin_prefetch(rs.ahead + i, 0, 3);
      mx = xsimd::max(mx, VF::load_unaligned(rs.next + i));
    }
    if constexpr (P::cur) {
      const VF e = exp(VF::load_unaligned(rs.cur + i));
      e.store_unaligned(ec + i);
      s += e;
    }
    if constexpr (P::prev) simd::stream(yp + i, VF::load_unaligned(ep + i) * vi);
  }
  if constexpr (P::cur) inv = 1.f / simd::hsum(s);
  if constexpr (P::next) m = simd::hmax(mx);
}

void softmax_rows_streamed(const float* x, float* y, int64_t r0, int64_t r1, int64_t n,
                           float* ring) {
  float m = 0.f, inv = 0.f;
  simd::stream_rows(r0, r1, [&](auto phase, int64_t r) {
    using P = decltype(phase);
    if (!P::cur || fusable(m))
      softmax_step<P, true>(x, y, r, r1, n, ring, m, inv);
    else
      softmax_step<P, false>(x, y, r, r1, n, ring, m, inv);
  });
}

// Step r of log-softmax: the max of row r+1, sum(exp(x - m)) of row r, and
// y = (x - max) - logsum of row r-1 (still in L1) streamed out. Fused, the
// sum's exponent is softmax's one FMA: its terms then share a factor 2^d
// (ShiftedExp::log_factor), which comes back out of the log. That loses the
// exact 0 of a one-element row, which never streams (n is a multiple of W).
template <class P, bool Fused>
void log_softmax_step(const float* x, float* y, int64_t r, int64_t r1, int64_t n, float& m,
                      float& mp, float& lp) {
  const simd::StepRows<P> rs(x, r, r1, n);
  float* yp = P::prev ? y + (r - 1) * n : nullptr;
  const ShiftedExp<Fused> exp(m);
  const VF vmp(mp), vlp(lp);
  VF mx(kNegInf), s(0.f);
  for (int64_t i = 0; i < n; i += W) {
    if constexpr (P::next) {
      __builtin_prefetch(rs.ahead + i, 0, 3);
      mx = xsimd::max(mx, VF::load_unaligned(rs.next + i));
    }
    if constexpr (P::cur) s += exp(VF::load_unaligned(rs.cur + i));
    if constexpr (P::prev) simd::stream(yp + i, (VF::load_unaligned(rs.prev + i) - vmp) - vlp);
  }
  if constexpr (P::cur) mp = m, lp = std::log(simd::hsum(s)) - exp.log_factor();
  if constexpr (P::next) m = simd::hmax(mx);
}

void log_softmax_rows_streamed(const float* x, float* y, int64_t r0, int64_t r1, int64_t n) {
  float m = 0.f, mp = 0.f, lp = 0.f;  // row r's max; row r-1's max and logsum
  simd::stream_rows(r0, r1, [&](auto phase, int64_t r) {
    using P = decltype(phase);
    if (!P::cur || fusable(m))
      log_softmax_step<P, true>(x, y, r, r1, n, m, mp, lp);
    else
      log_softmax_step<P, false>(x, y, r, r1, n, m, mp, lp);
  });
}

// ---- backward rows ------------------------------------------------------------
// Each is a reduction pass then a write pass over the same row, which is still
// in L1/L2 for the second: one trip through memory per tensor.

// dx = y * (dy - sum(dy * y))
void softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n) {
  const float dot = rows::dot(y, dy, n);
  int64_t i = 0;
  const VF vd(dot);
  for (; i + W <= n; i += W)
    ((VF::load_unaligned(dy + i) - vd) * VF::load_unaligned(y + i)).store_unaligned(dx + i);
  for (; i < n; ++i) dx[i] = (dy[i] - dot) * y[i];
}

// dx = dy - exp(y) * sum(dy)
void log_softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n) {
  const float sum = rows::sum(dy, n);
  int64_t i = 0;
  const VF vs(sum);
  for (; i + W <= n; i += W)
    xsimd::fnma(simd::exp(VF::load_unaligned(y + i)), vs, VF::load_unaligned(dy + i))
        .store_unaligned(dx + i);
  if (i < n) {  // exp on a partial vector: 0-filled lanes are computed, not stored
    const int k = int(n - i);
    simd::store_partial(dx + i,
                        xsimd::fnma(simd::exp(simd::load_partial(y + i, k, 0.f)), vs,
                                    simd::load_partial(dy + i, k, 0.f)),
                        k);
  }
}

// ---- cross-entropy rows -----------------------------------------------------------

// sum(exp(x - m)) and, when SumX, sum(x) (for the label-smoothing term).
// Tail lanes: -inf for exp (adds exp(-inf) = 0), 0 for the plain sum.
template <bool SumX>
std::pair<float, float> ce_row_sums(const float* x, int64_t n, float m, const float* next) {
  constexpr int kLine = 64 / int(sizeof(float));
  const ShiftedExp<false> exp(m);
  VF s0(0.f), s1(0.f), s2(0.f), s3(0.f), t0(0.f), t1(0.f);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    for (int k = 0; k < 4 * W; k += kLine) __builtin_prefetch(next + i + k, 0, 3);
    const VF a = VF::load_unaligned(x + i), b = VF::load_unaligned(x + i + W);
    const VF c = VF::load_unaligned(x + i + 2 * W), d = VF::load_unaligned(x + i + 3 * W);
    s0 += exp(a);
    s1 += exp(b);
    s2 += exp(c);
    s3 += exp(d);
    if constexpr (SumX) {
      t0 += a + b;
      t1 += c + d;
    }
  }
  for (; i + W <= n; i += W) {
    const VF a = VF::load_unaligned(x + i);
    s0 += exp(a);
    if constexpr (SumX) t0 += a;
  }
  if (i < n) {
    const int k = int(n - i);
    s1 += exp(simd::load_partial(x + i, k, kNegInf));
    if constexpr (SumX) t1 += simd::load_partial(x + i, k, 0.f);
  }
  return {simd::hsum((s0 + s1) + (s2 + s3)), SumX ? simd::hsum(t0 + t1) : 0.f};
}

// One row of the forward: the loss, and max/logsum for the backward.
//   -logp[c] = logsum - (x[c] - max);  mean_c(-logp[c]) = logsum - (sum(x)/C - max)
// The smoothing term is skipped at ls == 0, so a -inf logit elsewhere in the
// row does not turn 0 * inf into NaN.
float ce_row_forward(const float* x, int64_t C, int32_t t, float ls, float* max, float* logsum,
                     const float* next) {
  const float m = row_max(x, C);
  float loss;
  if (ls == 0.f) {
    const float l = std::log(ce_row_sums<false>(x, C, m, next).first);
    loss = l - (x[t] - m);
    *logsum = l;
  } else {
    const auto [s, sx] = ce_row_sums<true>(x, C, m, next);
    const float l = std::log(s);
    loss = (1.f - ls) * (l - (x[t] - m)) + ls * (l - (sx / float(C) - m));
    *logsum = l;
  }
  *max = m;
  return loss;
}

// dx = g * exp((x - max) - logsum) - g * ls / C, then dx[t] -= g * (1 - ls).
void ce_row_backward(const float* x, int64_t C, int32_t t, float m, float l, float g, float ls,
                     float* dx) {
  const VF vm(m), vl(l), vg(g), vq(g * ls / float(C));
  int64_t i = 0;
  for (; i + W <= C; i += W)
    xsimd::fms(vg, simd::exp((VF::load_unaligned(x + i) - vm) - vl), vq).store_unaligned(dx + i);
  if (i < C) {
    const int k = int(C - i);
    simd::store_partial(
        dx + i, xsimd::fms(vg, simd::exp((simd::load_partial(x + i, k, 0.f) - vm) - vl), vq), k);
  }
  dx[t] -= g * (1.f - ls);
}

// x: [...,n] -> rows, n; rank 0 has no axis to normalise.
void check_input(const Tensor& x, const char* op) {
  check(x.defined(), op, ": undefined tensor");
  check(x.dim() >= 1, op, ": expected at least 1 dimension, got shape ", x.shape());
}

}  // namespace

// ---- kernels ----------------------------------------------------------------
// x, y: [rows, n]. A row of all -inf gives NaN (0/0), as torch; rows with some
// -inf give those positions weight 0 (log-softmax: -inf).

void softmax_forward(const float* x, float* y, int64_t rows, int64_t n) {
  if (streamed(y, rows, n))
    return parallel_row_blocks(rows, rows * n, [&](int64_t r0, int64_t r1) {
      std::vector<float> ring(size_t(2 * (n + W)));
      softmax_rows_streamed(x, y, r0, r1, n, ring.data());
    });
#pragma omp parallel for schedule(static) if (worth_threads(rows * n)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r)
    softmax_row(x + r * n, y + r * n, n, x + std::min(r + 1, rows - 1) * n);
}

namespace {
// The reference's first two passes over a row: the max (NaN wins, as torch)
// and sum(exp(x - max)) in double.
std::pair<float, double> max_and_sumexp_ref(const float* xr, int64_t n) {
  float m = kNegInf;
  for (int64_t i = 0; i < n; ++i) m = std::isnan(xr[i]) || xr[i] > m ? xr[i] : m;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(double(xr[i]) - m);
  return {m, s};
}
}  // namespace

void softmax_forward_ref(const float* x, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const auto [m, s] = max_and_sumexp_ref(xr, n);
    for (int64_t i = 0; i < n; ++i) yr[i] = float(std::exp(double(xr[i]) - m) / s);
  }
}

void log_softmax_forward(const float* x, float* y, int64_t rows, int64_t n) {
  if (streamed(y, rows, n))
    return parallel_row_blocks(rows, rows * n, [&](int64_t r0, int64_t r1) {
      log_softmax_rows_streamed(x, y, r0, r1, n);
    });
#pragma omp parallel for schedule(static) if (worth_threads(rows * n)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r)
    log_softmax_row(x + r * n, y + r * n, n, x + std::min(r + 1, rows - 1) * n);
}

void log_softmax_forward_ref(const float* x, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const auto [m, s] = max_and_sumexp_ref(xr, n);
    const double lse = std::log(s);
    for (int64_t i = 0; i < n; ++i) yr[i] = float((double(xr[i]) - m) - lse);
  }
}

// ---- backward kernels ---------------------------------------------------------
// y, dy, dx: [rows, n]

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * n)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) softmax_backward_row(y + r * n, dy + r * n, dx + r * n, n);
}

void softmax_backward_ref(const float* y, const float* dy, float* dx, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *yr = y + r * n, *dyr = dy + r * n;
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += double(yr[i]) * dyr[i];
    for (int64_t i = 0; i < n; ++i) dx[r * n + i] = float(double(yr[i]) * (dyr[i] - dot));
  }
}

void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * n)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) log_softmax_backward_row(y + r * n, dy + r * n, dx + r * n, n);
}

void log_softmax_backward_ref(const float* y, const float* dy, float* dx, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *yr = y + r * n, *dyr = dy + r * n;
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += dyr[i];
    for (int64_t i = 0; i < n; ++i) dx[r * n + i] = float(dyr[i] - std::exp(double(yr[i])) * s);
  }
}

// ---- cross-entropy kernels ------------------------------------------------------------
// x, dx: [rows, C]; target, loss, max, logsum, dloss: [rows]

void cross_entropy_forward(const float* x, const int32_t* target, int64_t rows, int64_t C,
                           int64_t ignore_index, float ls, float* loss, float* max, float* logsum) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * C)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    if (target[r] == ignore_index) {
      loss[r] = 0.f;
      continue;
    }
    loss[r] = ce_row_forward(x + r * C, C, target[r], ls, max + r, logsum + r,
                             x + std::min(r + 1, rows - 1) * C);
  }
}

void cross_entropy_forward_ref(const float* x, const int32_t* target, int64_t rows, int64_t C,
                               int64_t ignore_index, float ls, float* loss, float* max,
                               float* logsum) {
  std::vector<float> logp(size_t(std::max<int64_t>(C, 0)));
  for (int64_t r = 0; r < rows; ++r) {
    if (target[r] == ignore_index) {
      loss[r] = 0.f;
      continue;
    }
    const float* xr = x + r * C;
    float m = kNegInf;
    for (int64_t i = 0; i < C; ++i) m = std::isnan(xr[i]) || xr[i] > m ? xr[i] : m;
    double s = 0, mean_nlp = 0;
    for (int64_t i = 0; i < C; ++i) s += std::exp(double(xr[i]) - m);
    const double l = std::log(s);
    for (int64_t i = 0; i < C; ++i) mean_nlp -= ((double(xr[i]) - m) - l) / double(C);
    const double nll = -((double(xr[target[r]]) - m) - l);
    loss[r] = float(ls == 0.f ? nll : (1.0 - ls) * nll + ls * mean_nlp);
    max[r] = m;
    logsum[r] = float(l);
  }
}

void cross_entropy_backward(const float* x, const int32_t* target, const float* max,
                            const float* logsum, const float* dloss, float scale, int64_t rows,
                            int64_t C, int64_t ignore_index, float ls, float* dx) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * C)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    if (target[r] == ignore_index) {
      std::fill(dx + r * C, dx + (r + 1) * C, 0.f);
      continue;
    }
    const float g = dloss ? scale * dloss[r] : scale;
    ce_row_backward(x + r * C, C, target[r], max[r], logsum[r], g, ls, dx + r * C);
  }
}

void cross_entropy_backward_ref(const float* x, const int32_t* target, const float* max,
                                const float* logsum, const float* dloss, float scale, int64_t rows,
                                int64_t C, int64_t ignore_index, float ls, float* dx) {
  for (int64_t r = 0; r < rows; ++r) {
    const bool ignored = target[r] == ignore_index;
    const double g = ignored ? 0.0 : double(scale) * (dloss ? dloss[r] : 1.f);
    for (int64_t i = 0; i < C; ++i) {
      if (ignored) {
        dx[r * C + i] = 0.f;
        continue;
      }
      const double p = std::exp((double(x[r * C + i]) - max[r]) - logsum[r]);
      const double q = (i == target[r] ? 1.0 - ls : 0.0) + double(ls) / double(C);
      dx[r * C + i] = float(g * (p - q));
    }
  }
}

// ---- Tensor wrappers --------------------------------------------------------

Tensor softmax(const Tensor& x) {  // x: [...,n] -> [...,n]
  check_input(x, "softmax");
  Tensor y(x.shape());
  const int64_t n = x.size(-1);
  softmax_forward(x.data(), y.data(), n ? x.numel() / n : 0, n);
  return y;
}

Tensor log_softmax(const Tensor& x) {  // x: [...,n] -> [...,n]
  check_input(x, "log_softmax");
  Tensor y(x.shape());
  const int64_t n = x.size(-1);
  log_softmax_forward(x.data(), y.data(), n ? x.numel() / n : 0, n);
  return y;
}

}  // namespace qkv
