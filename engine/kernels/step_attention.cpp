// One decoder step's attention per row (see step_attention.h). Each row is a
// few S x D dot products and S axpys of length K: memory-bound on P and V
// (one read each forward, two backward), so the rows are split over threads
// and each row's S scores stay in registers / L1.
#include "engine/kernels/step_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/row_moments.h"
#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

// y[0..n) += a * x[0..n)
inline void axpy(float a, const float* x, float* y, int64_t n) {
  const VF va(a);
  int64_t i = 0;
  for (; i + W <= n; i += W)
    xsimd::fma(va, VF::load_unaligned(x + i), VF::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

// w[0..S) = softmax(w[0..S)) in place (S is a source length: tens, scalar is fine).
void softmax_small(float* w, int64_t S) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t s = 0; s < S; ++s) m = std::max(m, w[s]);
  float sum = 0.f;
  for (int64_t s = 0; s < S; ++s) sum += (w[s] = std::exp(w[s] - m));
  const float r = 1.f / sum;
  for (int64_t s = 0; s < S; ++s) w[s] *= r;
}

// w[0..S) = softmax(scores in w); ctx[0..K) = w V  (both score kinds end here)
void softmax_context(int64_t S, int64_t K, const float* V, float* w, float* ctx) {
  softmax_small(w, S);
  std::fill(ctx, ctx + K, 0.f);
  for (int64_t s = 0; s < S; ++s)
    if (w[s] != 0.f) axpy(w[s], V + s * K, ctx, K);  // masked keys add exactly nothing
}

// Through ctx = w V and w = softmax(e): ds[s] = scale de[s], dV += w dctx^T.
void softmax_context_backward(int64_t S, int64_t K, const float* V, const float* w,
                              const float* dctx, const float* dw, float scale, float* dV,
                              float* ds) {
  float sum = 0.f;
  for (int64_t s = 0; s < S; ++s) {
    ds[s] = w[s] == 0.f ? 0.f : rows::dot(V + s * K, dctx, K) + (dw ? dw[s] : 0.f);  // da
    sum += w[s] * ds[s];
  }
  for (int64_t s = 0; s < S; ++s) {
    if (dV && w[s] != 0.f) axpy(w[s], dctx, dV + s * K, K);
    ds[s] = scale * w[s] * (ds[s] - sum);
  }
}

void forward_row(int64_t S, int64_t D, int64_t K, const float* q, const float* P, const float* V,
                 const float* mask, float scale, float* w, float* ctx) {
  for (int64_t s = 0; s < S; ++s)
    w[s] = scale * rows::dot(P + s * D, q, D) + (mask ? mask[s] : 0.f);
  softmax_context(S, K, V, w, ctx);
}

void backward_row(int64_t S, int64_t D, int64_t K, const float* q, const float* P, const float* V,
                  const float* w, const float* dctx, const float* dw, float scale, float* dq,
                  float* dP, float* dV, float* ds) {
  softmax_context_backward(S, K, V, w, dctx, dw, scale, dV, ds);
  for (int64_t s = 0; s < S; ++s) {
    if (ds[s] == 0.f) continue;
    if (dq) axpy(ds[s], P + s * D, dq, D);
    if (dP) axpy(ds[s], q, dP + s * D, D);
  }
}

// v . tanh(qp + kp) over A
float additive_score(const float* qp, const float* kp, const float* v, int64_t A) {
  VF acc0(0.f), acc1(0.f);
  int64_t i = 0;
  for (; i + 2 * W <= A; i += 2 * W) {
    acc0 = xsimd::fma(VF::load_unaligned(v + i),
                      xsimd::tanh(VF::load_unaligned(qp + i) + VF::load_unaligned(kp + i)), acc0);
    acc1 = xsimd::fma(VF::load_unaligned(v + i + W),
                      xsimd::tanh(VF::load_unaligned(qp + i + W) + VF::load_unaligned(kp + i + W)),
                      acc1);
  }
  for (; i + W <= A; i += W)
    acc0 = xsimd::fma(VF::load_unaligned(v + i),
                      xsimd::tanh(VF::load_unaligned(qp + i) + VF::load_unaligned(kp + i)), acc0);
  float r = simd::hsum(acc0 + acc1);
  for (; i < A; ++i) r += v[i] * std::tanh(qp[i] + kp[i]);
  return r;
}

// u = tanh(qp + kp), p = ds v (1 - u^2): dqp += p, dkp += p, dv += ds u
void additive_backward_key(float ds, const float* qp, const float* kp, const float* v, int64_t A,
                           float* dqp, float* dkp, float* dv) {
  const VF vds(ds), one(1.f);
  int64_t i = 0;
  for (; i + W <= A; i += W) {
    const VF u = xsimd::tanh(VF::load_unaligned(qp + i) + VF::load_unaligned(kp + i));
    const VF p = vds * VF::load_unaligned(v + i) * xsimd::fnma(u, u, one);
    if (dqp) (VF::load_unaligned(dqp + i) + p).store_unaligned(dqp + i);
    if (dkp) (VF::load_unaligned(dkp + i) + p).store_unaligned(dkp + i);
    if (dv) xsimd::fma(vds, u, VF::load_unaligned(dv + i)).store_unaligned(dv + i);
  }
  for (; i < A; ++i) {
    const float u = std::tanh(qp[i] + kp[i]), p = ds * v[i] * (1.f - u * u);
    if (dqp) dqp[i] += p;
    if (dkp) dkp[i] += p;
    if (dv) dv[i] += ds * u;
  }
}

}  // namespace

void step_attention_forward(int64_t B, int64_t S, int64_t D, int64_t K, const float* q, int64_t ldq,
                            const float* P, const float* V, const float* mask, float scale,
                            float* w, int64_t ldw, float* ctx, int64_t ldc) {
  parallel_for(B, B * S * (D + K), [&](int64_t b) {
    forward_row(S, D, K, q + b * ldq, P + b * S * D, V + b * S * K, mask ? mask + b * S : nullptr,
                scale, w + b * ldw, ctx + b * ldc);
  });
}

void step_attention_backward(int64_t B, int64_t S, int64_t D, int64_t K, const float* q,
                             int64_t ldq, const float* P, const float* V, const float* w,
                             int64_t ldw, const float* dctx, int64_t lddc, const float* dw,
                             int64_t lddw, float scale, float* dq, int64_t lddq, float* dP,
                             float* dV, float* ds) {
  parallel_for(B, 2 * B * S * (D + K), [&](int64_t b) {
    backward_row(S, D, K, q + b * ldq, P + b * S * D, V + b * S * K, w + b * ldw, dctx + b * lddc,
                 dw ? dw + b * lddw : nullptr, scale, dq ? dq + b * lddq : nullptr,
                 dP ? dP + b * S * D : nullptr, dV ? dV + b * S * K : nullptr, ds + b * S);
  });
}

void additive_attention_forward(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                int64_t ldq, const float* KP, const float* v, const float* V,
                                const float* mask, float* w, int64_t ldw, float* ctx, int64_t ldc) {
  // a tanh costs about 20 flops: weigh the row's S x A of them
  parallel_for(B, B * S * (20 * A + K), [&](int64_t b) {
    const float* m = mask ? mask + b * S : nullptr;
    float* wb = w + b * ldw;
    for (int64_t s = 0; s < S; ++s)
      wb[s] = m && std::isinf(m[s])
                  ? m[s]
                  : additive_score(qp + b * ldq, KP + (b * S + s) * A, v, A) + (m ? m[s] : 0.f);
    softmax_context(S, K, V + b * S * K, wb, ctx + b * ldc);
  });
}

void additive_attention_backward(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                 int64_t ldq, const float* KP, const float* v, const float* V,
                                 const float* w, int64_t ldw, const float* dctx, int64_t lddc,
                                 const float* dw, int64_t lddw, float* dqp, int64_t lddq,
                                 float* dKP, float* dV, float* dv_rows, float* ds) {
  parallel_for(B, B * S * (25 * A + 2 * K), [&](int64_t b) {
    float* dsb = ds + b * S;
    softmax_context_backward(S, K, V + b * S * K, w + b * ldw, dctx + b * lddc,
                             dw ? dw + b * lddw : nullptr, 1.f, dV ? dV + b * S * K : nullptr, dsb);
    for (int64_t s = 0; s < S; ++s)
      if (dsb[s] != 0.f)
        additive_backward_key(dsb[s], qp + b * ldq, KP + (b * S + s) * A, v, A,
                              dqp ? dqp + b * lddq : nullptr, dKP ? dKP + (b * S + s) * A : nullptr,
                              dv_rows ? dv_rows + b * A : nullptr);
  });
}

// ---- scalar references: the definitions, summed in double ----------------------------

namespace {

// Row b's scores e[0..S) (max m) -> its weights w[0..S) and context ctx[0..K) over V [B,S,K].
void softmax_context_ref(int64_t b, int64_t S, int64_t K, const float* V, double* e, double m,
                         float* w, float* ctx) {
  double sum = 0;
  for (int64_t s = 0; s < S; ++s) sum += (e[s] = std::exp(e[s] - m));
  for (int64_t s = 0; s < S; ++s) w[s] = float(e[s] / sum);
  for (int64_t k = 0; k < K; ++k) {
    double c = 0;
    for (int64_t s = 0; s < S; ++s) c += e[s] / sum * V[(b * S + s) * K + k];
    ctx[k] = float(c);
  }
}

}  // namespace

void step_attention_forward_ref(int64_t B, int64_t S, int64_t D, int64_t K, const float* q,
                                int64_t ldq, const float* P, const float* V, const float* mask,
                                float scale, float* w, int64_t ldw, float* ctx, int64_t ldc) {
  std::vector<double> e(size_t(std::max<int64_t>(S, 1)));
  for (int64_t b = 0; b < B; ++b) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t s = 0; s < S; ++s) {
      double d = 0;
      for (int64_t j = 0; j < D; ++j) d += double(P[(b * S + s) * D + j]) * q[b * ldq + j];
      e[s] = scale * d + (mask ? mask[b * S + s] : 0.f);
      m = std::max(m, e[s]);
    }
    softmax_context_ref(b, S, K, V, e.data(), m, w + b * ldw, ctx + b * ldc);
  }
}

void step_attention_backward_ref(int64_t B, int64_t S, int64_t D, int64_t K, const float* q,
                                 int64_t ldq, const float* P, const float* V, const float* w,
                                 int64_t ldw, const float* dctx, int64_t lddc, const float* dw,
                                 int64_t lddw, float scale, float* dq, int64_t lddq, float* dP,
                                 float* dV, float* ds) {
  for (int64_t b = 0; b < B; ++b) {
    const float* wb = w + b * ldw;
    double sum = 0;
    std::vector<double> da(static_cast<size_t>(S));
    for (int64_t s = 0; s < S; ++s) {
      double d = 0;
      for (int64_t k = 0; k < K; ++k) d += double(V[(b * S + s) * K + k]) * dctx[b * lddc + k];
      da[s] = d + (dw ? dw[b * lddw + s] : 0.f);
      sum += wb[s] * da[s];
    }
    for (int64_t s = 0; s < S; ++s) {
      const double g = double(scale) * wb[s] * (da[s] - sum);
      ds[b * S + s] = float(g);
      if (dV)
        for (int64_t k = 0; k < K; ++k)
          dV[(b * S + s) * K + k] += float(wb[s] * dctx[b * lddc + k]);
      if (dP)
        for (int64_t j = 0; j < D; ++j) dP[(b * S + s) * D + j] += float(g * q[b * ldq + j]);
    }
    if (dq)
      for (int64_t j = 0; j < D; ++j) {
        double d = 0;
        for (int64_t s = 0; s < S; ++s) d += double(ds[b * S + s]) * P[(b * S + s) * D + j];
        dq[b * lddq + j] += float(d);
      }
  }
}

void additive_attention_forward_ref(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                    int64_t ldq, const float* KP, const float* v, const float* V,
                                    const float* mask, float* w, int64_t ldw, float* ctx,
                                    int64_t ldc) {
  std::vector<double> e(size_t(std::max<int64_t>(S, 1)));
  for (int64_t b = 0; b < B; ++b) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t s = 0; s < S; ++s) {
      double d = 0;
      for (int64_t a = 0; a < A; ++a)
        d += double(v[a]) * std::tanh(double(qp[b * ldq + a]) + KP[(b * S + s) * A + a]);
      e[s] = d + (mask ? mask[b * S + s] : 0.f);
      m = std::max(m, e[s]);
    }
    softmax_context_ref(b, S, K, V, e.data(), m, w + b * ldw, ctx + b * ldc);
  }
}

void additive_attention_backward_ref(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                     int64_t ldq, const float* KP, const float* v, const float* V,
                                     const float* w, int64_t ldw, const float* dctx, int64_t lddc,
                                     const float* dw, int64_t lddw, float* dqp, int64_t lddq,
                                     float* dKP, float* dV, float* dv_rows, float* ds) {
  for (int64_t b = 0; b < B; ++b) {
    const float* wb = w + b * ldw;
    double sum = 0;
    std::vector<double> da(static_cast<size_t>(S));
    for (int64_t s = 0; s < S; ++s) {
      double d = 0;
      for (int64_t k = 0; k < K; ++k) d += double(V[(b * S + s) * K + k]) * dctx[b * lddc + k];
      da[s] = d + (dw ? dw[b * lddw + s] : 0.f);
      sum += wb[s] * da[s];
    }
    for (int64_t s = 0; s < S; ++s) {
      const double g = double(wb[s]) * (da[s] - sum);
      ds[b * S + s] = float(g);
      if (dV)
        for (int64_t k = 0; k < K; ++k)
          dV[(b * S + s) * K + k] += float(wb[s] * dctx[b * lddc + k]);
      for (int64_t a = 0; a < A; ++a) {
        const double u = std::tanh(double(qp[b * ldq + a]) + KP[(b * S + s) * A + a]);
        const double p = g * v[a] * (1 - u * u);
        if (dqp) dqp[b * lddq + a] += float(p);
        if (dKP) dKP[(b * S + s) * A + a] += float(p);
        if (dv_rows) dv_rows[b * A + a] += float(g * u);
      }
    }
  }
}

}  // namespace qkv
