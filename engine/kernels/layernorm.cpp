// LayerNorm over the last axis. Forward: two-pass row statistics, then one
// fused normalise + affine pass. Backward: two passes per row (sums, then dx
// and the dgamma/dbeta partials) over a row still in L1. Threads split rows
// (the backward: fixed row blocks, so dgamma/dbeta do not depend on the count).
#include "engine/kernels/layernorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/kernels/row_moments.h"
#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

// mean = mean0 + shift, where mean0 = sum/n (pass 1) and shift = sum(d)/n with
// d = x - mean0 (pass 2, alongside sum(d^2)). The shift is the rounding error
// of mean0; keeping it apart lets the normalise pass use x - mean0 (exact when
// x is near mean0), which matters when |mean| >> std: at mean 1000 a float
// mean alone is off by up to 3e-5, i.e. 3e-3 in x_hat at std 0.01.
struct RowStats {
  float mean0, shift, rstd;
};

// n == 0 gives NaN statistics (0/0). `next` (the next row of x) is prefetched
// during the second pass, which reads x from L1 and leaves DRAM idle: 4096x1024
// at one thread went 1.23 -> 1.16 ms, the speed of a plain copy.
RowStats stats_of(float mean0, float sum_d, float sum_d2, int64_t n, float eps) {
  const float shift = sum_d / float(n);
  const float m2 = sum_d2 / float(n);
  // Biased variance: mean(d^2) - shift^2 (shift^2 is tiny: no cancellation).
  const float var = std::max(m2 - shift * shift, 0.f);
  return {mean0, shift, 1.f / std::sqrt(var + eps)};  // exact sqrt and division
}

RowStats row_stats(const float* x, int64_t n, float eps, const float* next) {
  const rows::Moments m = rows::centred(x, n, next);
  return stats_of(m.mean0, m.sum_d, m.sum_d2, n, eps);
}

// y = ((x - mean0) * rstd - shift * rstd) * gamma + beta, one pass, no temporaries.
// y = (x - mean0) * rstd - shift * rstd, then gamma and beta: W lanes at i.
template <bool Gamma, bool Beta>
VF normalize_at(const float* x, const float* gamma, const float* beta, int64_t i, VF vm, VF vr,
                VF vo) {
  VF v = xsimd::fma(VF::load_unaligned(x + i) - vm, vr, vo);
  if constexpr (Gamma && Beta)
    v = xsimd::fma(v, VF::load_unaligned(gamma + i), VF::load_unaligned(beta + i));
  else if constexpr (Gamma)
    v *= VF::load_unaligned(gamma + i);
  else if constexpr (Beta)
    v += VF::load_unaligned(beta + i);
  return v;
}

template <bool Gamma, bool Beta>
void normalize_row(const float* x, const float* gamma, const float* beta, int64_t n, RowStats st,
                   float* y) {
  const float off = -st.shift * st.rstd;
  const VF vm(st.mean0), vr(st.rstd), vo(off);
  int64_t i = 0;
  for (; i + W <= n; i += W)
    normalize_at<Gamma, Beta>(x, gamma, beta, i, vm, vr, vo).store_unaligned(y + i);
  for (; i < n; ++i) {
    float v = (x[i] - st.mean0) * st.rstd + off;
    if constexpr (Gamma) v *= gamma[i];
    if constexpr (Beta) v += beta[i];
    y[i] = v;
  }
}

// Large tensors (simd::stream_worth): simd::stream_rows, as softmax's
// streamed rows: step r takes the sum of row r+1 (the only pass that reads
// memory; row r+2 is prefetched), the centred moments of row r (in L1) and the
// output of row r-1, streamed out. Rows [r0, r1).
template <bool Gamma, bool Beta>
void forward_rows_streamed(const float* x, const float* gamma, const float* beta, int64_t r0,
                           int64_t r1, int64_t n, float eps, float* y, float* mean, float* rstd) {
  float mean0 = 0.f;  // row r's sum / n, made by step r-1
  RowStats prev{};    // row r-1's
  simd::stream_rows(r0, r1, [&](auto phase, int64_t r) {
    using P = decltype(phase);
    const simd::StepRows<P> rs(x, r, r1, n);
    float* yp = P::prev ? y + (r - 1) * n : nullptr;
    const VF vm(mean0), pm(prev.mean0), pr(prev.rstd), po(-prev.shift * prev.rstd);
    VF s(0.f), sd(0.f), sd2(0.f);
    for (int64_t i = 0; i < n; i += W) {
      if constexpr (P::next) {
        __builtin_prefetch(rs.ahead + i, 0, 3);
        s += VF::load_unaligned(rs.next + i);
      }
      if constexpr (P::cur) {
        const VF d = VF::load_unaligned(rs.cur + i) - vm;
        sd += d;
        sd2 = xsimd::fma(d, d, sd2);
      }
      if constexpr (P::prev)
        simd::stream(yp + i, normalize_at<Gamma, Beta>(rs.prev, gamma, beta, i, pm, pr, po));
    }
    if constexpr (P::cur) {
      prev = stats_of(mean0, simd::hsum(sd), simd::hsum(sd2), n, eps);
      mean[r] = prev.mean0 + prev.shift;
      rstd[r] = prev.rstd;
    }
    if constexpr (P::next) mean0 = simd::hsum(s) / float(n);
  });
}

template <bool Gamma, bool Beta>
void forward_rows(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t n,
                  float eps, float* y, float* mean, float* rstd) {
  if (simd::stream_worth(y, rows, n))
    return parallel_row_blocks(rows, rows * n, [&](int64_t r0, int64_t r1) {
      forward_rows_streamed<Gamma, Beta>(x, gamma, beta, r0, r1, n, eps, y, mean, rstd);
    });
#pragma omp parallel for schedule(static) if (worth_threads(rows * n)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    const RowStats st = row_stats(x + r * n, n, eps, x + std::min(r + 1, rows - 1) * n);
    mean[r] = st.mean0 + st.shift;
    rstd[r] = st.rstd;
    normalize_row<Gamma, Beta>(x + r * n, gamma, beta, n, st, y + r * n);
  }
}

// ---- backward ------------------------------------------------------------------

// The row blocks whose dgamma/dbeta partials are summed in block order. Fixed
// by the row count alone (never by the thread count), so the sums are
// reproducible; 8 blocks keep 2..8 threads busy and cost 16 partial rows.
constexpr int64_t kBackwardBlocks = 8;

// Row r of the backward. Pass 1: sum(d), sum(g), sum(g*d) with d = x - mean
// and g = dy * gamma. Pass 2: x_hat = (d - mean(d)) * rstd, dx, and
// dgamma/dbeta partials (pg, pb) += dy * x_hat, dy. mean(d) is ~0; taking it
// out restores the exact zero mean of x_hat that the float mean rounded away.
template <bool Gamma, bool DX, bool DG, bool DB>
void backward_row(const float* x, float mean, float rstd, const float* gamma, const float* dy,
                  int64_t n, float* dx, float* pg, float* pb) {
  auto gval = [&](int64_t i) {
    const VF d = VF::load_unaligned(dy + i);
    return Gamma ? d * VF::load_unaligned(gamma + i) : d;
  };
  const VF vmean(mean);
  VF sd0(0.f), sd1(0.f), sg0(0.f), sg1(0.f), sgd0(0.f), sgd1(0.f);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const VF d0 = VF::load_unaligned(x + i) - vmean, d1 = VF::load_unaligned(x + i + W) - vmean;
    sd0 += d0;
    sd1 += d1;
    if constexpr (DX) {
      const VF g0 = gval(i), g1 = gval(i + W);
      sg0 += g0;
      sg1 += g1;
      sgd0 = xsimd::fma(g0, d0, sgd0);
      sgd1 = xsimd::fma(g1, d1, sgd1);
    }
  }
  float sd = simd::hsum(sd0 + sd1), sg = 0.f, sgd = 0.f;
  if constexpr (DX) sg = simd::hsum(sg0 + sg1), sgd = simd::hsum(sgd0 + sgd1);
  for (; i < n; ++i) {
    const float d = x[i] - mean, g = Gamma ? dy[i] * gamma[i] : dy[i];
    sd += d;
    sg += g;
    sgd += g * d;
  }
  const float inv_n = 1.f / float(n);
  const float md = sd * inv_n;  // mean(d)
  // mean(g * x_hat) = rstd * (sum(g*d) - mean(d) * sum(g)) / n
  const float mg = sg * inv_n, mgx = rstd * (sgd - md * sg) * inv_n;
  // (x - mean) - md, not x - (mean + md): mean + md would round md away.
  const VF vmd(md), vr(rstd), vmg(mg), vmgx(mgx);
  for (i = 0; i + W <= n; i += W) {
    const VF xh = ((VF::load_unaligned(x + i) - vmean) - vmd) * vr;
    const VF g = VF::load_unaligned(dy + i);
    if constexpr (DX) {
      const VF gg = Gamma ? g * VF::load_unaligned(gamma + i) : g;
      (xsimd::fnma(xh, vmgx, gg - vmg) * vr).store_unaligned(dx + i);
    }
    if constexpr (DG) xsimd::fma(g, xh, VF::load_unaligned(pg + i)).store_unaligned(pg + i);
    if constexpr (DB) (VF::load_unaligned(pb + i) + g).store_unaligned(pb + i);
  }
  for (; i < n; ++i) {
    const float xh = ((x[i] - mean) - md) * rstd, g = dy[i];  // read g before dx (may alias)
    if constexpr (DX) dx[i] = (((Gamma ? g * gamma[i] : g) - mg) - xh * mgx) * rstd;
    if constexpr (DG) pg[i] += g * xh;
    if constexpr (DB) pb[i] += g;
  }
}

template <bool Gamma, bool DX, bool DG, bool DB>
void backward_rows(const float* x, const float* mean, const float* rstd, const float* gamma,
                   const float* dy, int64_t rows, int64_t n, float* dx, float* dgamma,
                   float* dbeta) {
  constexpr bool kAcc = DG || DB;
  // Without dgamma/dbeta every row is its own block.
  const int64_t blocks = kAcc ? std::min(rows, kBackwardBlocks) : rows;
  std::vector<float> part(kAcc ? size_t(2 * blocks * n) : 0, 0.f);  // [blocks, 2, n]
#pragma omp parallel for schedule(static) if (worth_threads(rows * n)) num_threads(num_threads())
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * rows / blocks, r1 = (b + 1) * rows / blocks;
    float* pg = kAcc ? part.data() + 2 * b * n : nullptr;
    for (int64_t r = r0; r < r1; ++r)
      backward_row<Gamma, DX, DG, DB>(x + r * n, mean[r], rstd[r], gamma, dy + r * n, n,
                                      DX ? dx + r * n : nullptr, pg, kAcc ? pg + n : nullptr);
  }
  // Block order (the compiler vectorises over columns).
  if constexpr (DG)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.f;
      for (int64_t b = 0; b < blocks; ++b) s += part[size_t(2 * b * n + j)];
      dgamma[j] = s;
    }
  if constexpr (DB)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.f;
      for (int64_t b = 0; b < blocks; ++b) s += part[size_t((2 * b + 1) * n + j)];
      dbeta[j] = s;
    }
}

template <bool Gamma, bool DX>
void backward_dispatch(const float* x, const float* mean, const float* rstd, const float* gamma,
                       const float* dy, int64_t rows, int64_t n, float* dx, float* dgamma,
                       float* dbeta) {
  if (dgamma && dbeta)
    backward_rows<Gamma, DX, true, true>(x, mean, rstd, gamma, dy, rows, n, dx, dgamma, dbeta);
  else if (dgamma)
    backward_rows<Gamma, DX, true, false>(x, mean, rstd, gamma, dy, rows, n, dx, dgamma, dbeta);
  else if (dbeta)
    backward_rows<Gamma, DX, false, true>(x, mean, rstd, gamma, dy, rows, n, dx, dgamma, dbeta);
  else
    backward_rows<Gamma, DX, false, false>(x, mean, rstd, gamma, dy, rows, n, dx, dgamma, dbeta);
}

}  // namespace

// ---- kernels ----------------------------------------------------------------

void layernorm_stats(const float* x, int64_t rows, int64_t n, float eps, float* mean, float* rstd) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * n)) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    const RowStats st = row_stats(x + r * n, n, eps, x + std::min(r + 1, rows - 1) * n);
    mean[r] = st.mean0 + st.shift;
    rstd[r] = st.rstd;
  }
}

void layernorm_stats_ref(const float* x, int64_t rows, int64_t n, float eps, float* mean,
                         float* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    double s = 0, m2 = 0;
    for (int64_t i = 0; i < n; ++i) s += xr[i];
    const double mu = s / double(n);
    for (int64_t i = 0; i < n; ++i) m2 += (xr[i] - mu) * (xr[i] - mu);
    mean[r] = float(mu);
    rstd[r] = float(1.0 / std::sqrt(m2 / double(n) + double(eps)));
  }
}

// x, y: [rows, n]; gamma, beta: [n] or null; mean, rstd: [rows].
void layernorm_forward(const float* x, const float* gamma, const float* beta, int64_t rows,
                       int64_t n, float eps, float* y, float* mean, float* rstd) {
  if (gamma && beta)
    forward_rows<true, true>(x, gamma, beta, rows, n, eps, y, mean, rstd);
  else if (gamma)
    forward_rows<true, false>(x, gamma, beta, rows, n, eps, y, mean, rstd);
  else if (beta)
    forward_rows<false, true>(x, gamma, beta, rows, n, eps, y, mean, rstd);
  else
    forward_rows<false, false>(x, gamma, beta, rows, n, eps, y, mean, rstd);
}

void layernorm_forward_ref(const float* x, const float* gamma, const float* beta, int64_t rows,
                           int64_t n, float eps, float* y, float* mean, float* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    double s = 0, m2 = 0;
    for (int64_t i = 0; i < n; ++i) s += xr[i];
    const double mu = s / double(n);
    for (int64_t i = 0; i < n; ++i) m2 += (xr[i] - mu) * (xr[i] - mu);
    const double rs = 1.0 / std::sqrt(m2 / double(n) + double(eps));
    for (int64_t i = 0; i < n; ++i)
      y[r * n + i] = float((xr[i] - mu) * rs * (gamma ? gamma[i] : 1.0) + (beta ? beta[i] : 0.0));
    mean[r] = float(mu);
    rstd[r] = float(rs);
  }
}

// x, dy, dx: [rows, n]; mean, rstd: [rows]; gamma, dgamma, dbeta: [n] or null.
void layernorm_backward(const float* x, const float* mean, const float* rstd, const float* gamma,
                        const float* dy, int64_t rows, int64_t n, float* dx, float* dgamma,
                        float* dbeta) {
  if (rows == 0 || n == 0) {  // no rows: the sums over rows are 0
    if (dgamma) std::fill(dgamma, dgamma + n, 0.f);
    if (dbeta) std::fill(dbeta, dbeta + n, 0.f);
    return;
  }
  if (gamma && dx)
    backward_dispatch<true, true>(x, mean, rstd, gamma, dy, rows, n, dx, dgamma, dbeta);
  else if (dx)
    backward_dispatch<false, true>(x, mean, rstd, gamma, dy, rows, n, dx, dgamma, dbeta);
  else  // gamma only enters dx
    backward_dispatch<false, false>(x, mean, rstd, gamma, dy, rows, n, dx, dgamma, dbeta);
}

void layernorm_backward_ref(const float* x, const float* mean, const float* rstd,
                            const float* gamma, const float* dy, int64_t rows, int64_t n, float* dx,
                            float* dgamma, float* dbeta) {
  const size_t N = size_t(n);
  std::vector<double> dg(N, 0.0), db(N, 0.0), xh(N, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * n, *dyr = dy + r * n;
    double md = 0, mg = 0, mgx = 0;
    for (int64_t i = 0; i < n; ++i) md += double(xr[i]) - mean[r];
    md /= double(n);
    for (int64_t i = 0; i < n; ++i) {
      xh[i] = (double(xr[i]) - mean[r] - md) * rstd[r];
      const double g = double(dyr[i]) * (gamma ? gamma[i] : 1.0);
      mg += g / double(n);
      mgx += g * xh[i] / double(n);
      dg[i] += dyr[i] * xh[i];
      db[i] += dyr[i];
    }
    if (dx)
      for (int64_t i = 0; i < n; ++i) {
        const double g = double(dyr[i]) * (gamma ? gamma[i] : 1.0);
        dx[r * n + i] = float(rstd[r] * (g - mg - xh[i] * mgx));
      }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (dgamma) dgamma[i] = float(dg[i]);
    if (dbeta) dbeta[i] = float(db[i]);
  }
}

// ---- Tensor wrapper ---------------------------------------------------------

// x: [...,n] -> y: [...,n], mean, rstd: [...]
LayerNormResult layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  check(x.defined(), "layernorm: undefined input tensor");
  check(x.dim() >= 1, "layernorm: expected at least 1 dimension, got shape ", x.shape());
  check(eps >= 0.f, "layernorm: eps must be >= 0, got ", eps);
  const int64_t n = x.size(-1);
  for (const auto& [t, name] : {std::pair{&gamma, "gamma"}, std::pair{&beta, "beta"}})
    check(!t->defined() || t->shape() == Shape{n}, "layernorm: ", name, " has shape ", t->shape(),
          ", expected [", n, "] (last axis of ", x.shape(), ")");
  Shape stat_shape(x.shape().begin(), x.shape().end() - 1);
  LayerNormResult r{Tensor(x.shape()), Tensor(stat_shape), Tensor(stat_shape)};
  // rows from the stats shape, so n == 0 still writes (NaN) statistics per row.
  layernorm_forward(x.data(), gamma.defined() ? gamma.data() : nullptr,
                    beta.defined() ? beta.data() : nullptr, r.mean.numel(), n, eps, r.y.data(),
                    r.mean.data(), r.rstd.data());
  return r;
}

}  // namespace qkv
