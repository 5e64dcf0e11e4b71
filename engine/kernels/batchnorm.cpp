#include "engine/kernels/batchnorm.h"

#include <cmath>
#include <limits>

#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {

using simd::VF;
using simd::W;

namespace {

template <class Fn>
void for_channels(int64_t C, int64_t work, Fn fn) {
  const int nt = num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(work))
  for (int64_t c = 0; c < C; ++c) fn(c);
}

// sum(p[i] - m) and sum((p[i] - m)^2) over one row of n floats.
void centred_sums(const float* p, int64_t n, float m, double& s1, double& s2) {
  VF a1(0.f), a2(0.f), b1(0.f), b2(0.f);
  const VF vm(m);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const VF d0 = VF::load_unaligned(p + i) - vm, d1 = VF::load_unaligned(p + i + W) - vm;
    a1 += d0, b1 += d1;
    a2 = xsimd::fma(d0, d0, a2), b2 = xsimd::fma(d1, d1, b2);
  }
  for (; i + W <= n; i += W) {
    const VF d = VF::load_unaligned(p + i) - vm;
    a1 += d, a2 = xsimd::fma(d, d, a2);
  }
  float t1 = simd::hsum(a1 + b1), t2 = simd::hsum(a2 + b2);
  for (; i < n; ++i) t1 += p[i] - m, t2 += (p[i] - m) * (p[i] - m);
  s1 += t1, s2 += t2;
}

double row_sum(const float* p, int64_t n) {
  VF a(0.f), b(0.f);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) a += VF::load_unaligned(p + i), b += VF::load_unaligned(p + i + W);
  for (; i + W <= n; i += W) a += VF::load_unaligned(p + i);
  float t = simd::hsum(a + b);
  for (; i < n; ++i) t += p[i];
  return t;
}

// y = x * scale + shift over one row.
void affine_row(const float* x, int64_t n, float scale, float shift, float* y) {
  const VF vs(scale), vb(shift);
  int64_t i = 0;
  for (; i + W <= n; i += W) xsimd::fma(VF::load_unaligned(x + i), vs, vb).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = x[i] * scale + shift;
}

}  // namespace

// ---- forward ------------------------------------------------------------------------
void batchnorm_forward_train(const float* x, int64_t N, int64_t C, int64_t S, const float* gamma,
                             const float* beta, float eps, float* y, float* mean, float* rstd,
                             float* var_unbiased) {
  const int64_t cnt = N * S;
  for_channels(C, N * C * S, [&](int64_t c) {
    // Pass 1: the mean; pass 2: centred sums around it (s1 corrects the
    // rounding of the mean, as in the two-pass corrected algorithm).
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += row_sum(x + (n * C + c) * S, S);
    const float m0 = float(s / double(cnt));
    double s1 = 0, s2 = 0;
    for (int64_t n = 0; n < N; ++n) centred_sums(x + (n * C + c) * S, S, m0, s1, s2);
    const double m = double(m0) + s1 / double(cnt);
    const double ss = std::max(0.0, s2 - s1 * s1 / double(cnt));
    const double var = ss / double(cnt);
    const float r = float(1.0 / std::sqrt(var + double(eps)));
    mean[c] = float(m), rstd[c] = r;
    var_unbiased[c] = cnt > 1 ? float(ss / double(cnt - 1)) : std::numeric_limits<float>::quiet_NaN();
    const float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
    const float scale = g * r, shift = b - float(m) * scale;
    for (int64_t n = 0; n < N; ++n) affine_row(x + (n * C + c) * S, S, scale, shift, y + (n * C + c) * S);
  });
}

void batchnorm_forward_train_ref(const float* x, int64_t N, int64_t C, int64_t S,
                                 const float* gamma, const float* beta, float eps, float* y,
                                 float* mean, float* rstd, float* var_unbiased) {
  const int64_t cnt = N * S;
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) s += x[(n * C + c) * S + i];
    const double m = s / double(cnt);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const double d = x[(n * C + c) * S + i] - m;
        ss += d * d;
      }
    const double r = 1.0 / std::sqrt(ss / double(cnt) + double(eps));
    mean[c] = float(m), rstd[c] = float(r);
    var_unbiased[c] = cnt > 1 ? float(ss / double(cnt - 1)) : std::numeric_limits<float>::quiet_NaN();
    const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (n * C + c) * S + i;
        y[k] = float((x[k] - m) * r * g + b);
      }
  }
}

void batchnorm_forward_eval(const float* x, int64_t N, int64_t C, int64_t S, const float* gamma,
                            const float* beta, const float* mean, const float* rstd, float* y) {
  for_channels(C, N * C * S, [&](int64_t c) {
    const float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
    const float scale = g * rstd[c], shift = b - mean[c] * scale;
    for (int64_t n = 0; n < N; ++n) affine_row(x + (n * C + c) * S, S, scale, shift, y + (n * C + c) * S);
  });
}

// ---- backward -----------------------------------------------------------------------
void batchnorm_backward(const float* x, const float* dy, int64_t N, int64_t C, int64_t S,
                        const float* gamma, const float* mean, const float* rstd, bool train,
                        float* dx, float* dgamma, float* dbeta) {
  const int64_t cnt = N * S;
  for_channels(C, 2 * N * C * S, [&](int64_t c) {
    const float m = mean[c], r = rstd[c], g = gamma ? gamma[c] : 1.f;
    // sum dy and sum dy * (x - m), one pass; xh = (x - m) * r.
    double sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = x + (n * C + c) * S;
      const float* dr = dy + (n * C + c) * S;
      VF a(0.f), b(0.f);
      const VF vm(m);
      int64_t i = 0;
      for (; i + W <= S; i += W) {
        const VF d = VF::load_unaligned(dr + i);
        a += d;
        b = xsimd::fma(d, VF::load_unaligned(xr + i) - vm, b);
      }
      float ta = simd::hsum(a), tb = simd::hsum(b);
      for (; i < S; ++i) ta += dr[i], tb += dr[i] * (xr[i] - m);
      sdy += ta, sdyx += tb;
    }
    if (dbeta) dbeta[c] = float(sdy);
    if (dgamma) dgamma[c] = float(sdyx * r);
    if (!dx) return;
    // train: dx = g r (dy - sdy/cnt - xh * sum(dy xh)/cnt)
    //           = g r dy - g r sdy/cnt - (x - m) * g r^3 sdyx/cnt
    const float k1 = g * r;
    const float k2 = train ? float(double(k1) * r * r * sdyx / double(cnt)) : 0.f;
    const float k0 = train ? float(double(k1) * sdy / double(cnt)) : 0.f;
    const VF v1(k1), v2(k2), vc(k0 - m * k2);  // dx = k1 dy - k2 x + (m k2 - k0)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = x + (n * C + c) * S;
      const float* dr = dy + (n * C + c) * S;
      float* o = dx + (n * C + c) * S;
      int64_t i = 0;
      for (; i + W <= S; i += W)
        (xsimd::fms(v1, VF::load_unaligned(dr + i), xsimd::fma(v2, VF::load_unaligned(xr + i), vc)))
            .store_unaligned(o + i);
      for (; i < S; ++i) o[i] = k1 * dr[i] - (k2 * xr[i] + (k0 - m * k2));
    }
  });
}

void batchnorm_backward_ref(const float* x, const float* dy, int64_t N, int64_t C, int64_t S,
                            const float* gamma, const float* mean, const float* rstd, bool train,
                            float* dx, float* dgamma, float* dbeta) {
  const int64_t cnt = N * S;
  for (int64_t c = 0; c < C; ++c) {
    const double m = mean[c], r = rstd[c], g = gamma ? gamma[c] : 1.0;
    double sdy = 0, sdyxh = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (n * C + c) * S + i;
        sdy += dy[k];
        sdyxh += dy[k] * (x[k] - m) * r;
      }
    if (dbeta) dbeta[c] = float(sdy);
    if (dgamma) dgamma[c] = float(sdyxh);
    if (!dx) continue;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (n * C + c) * S + i;
        const double xh = (x[k] - m) * r;
        dx[k] = train ? float(g * r * (dy[k] - sdy / double(cnt) - xh * sdyxh / double(cnt)))
                      : float(g * r * dy[k]);
      }
  }
}

}  // namespace qkv
