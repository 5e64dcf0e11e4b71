// SGD and Adam/AdamW update kernels (contract in optim.h). Each update is
// written once as a template over float and the vector batch, so the SIMD body
// and its scalar tail execute the same operations. The fma()s are explicit and
// stored products pass through rounded(), so -ffp-contract cannot change which
// products are fused.
#include "engine/kernels/optim.h"

#include <cmath>

#include "engine/simd.h"

namespace qkv {

using simd::VF;
using simd::W;

namespace {

// ---- one vocabulary for float and VF, so each update is written once ---------

// a*b + c rounded once. xsimd 8.1 has no AVX-512 fma kernel (its generic one is
// x*y + z, which -ffp-contract may fuse either way), so name the instruction.
inline float vfma(float a, float b, float c) { return std::fma(a, b, c); }
inline VF vfma(VF a, VF b, VF c) {
#if defined(__AVX512F__)
  static_assert(W == 16);
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__) && defined(__AVX2__)
  static_assert(W == 8);
  return _mm256_fmadd_ps(a, b, c);
#else
  // No FMA unit: lane by lane through std::fma (correctly rounded, slow), so
  // the portable build computes exactly what torch and the scalar tail do.
  alignas(64) float ta[W], tb[W], tc[W];
  a.store_aligned(ta);
  b.store_aligned(tb);
  c.store_aligned(tc);
  for (int k = 0; k < W; ++k) ta[k] = std::fma(ta[k], tb[k], tc[k]);
  return VF::load_aligned(ta);
#endif
}
// x, rounded here: an empty asm hides that x is a product, so -ffp-contract
// cannot fuse it into a later add (torch stores such products, e.g. p * decay).
inline float rounded(float x) {
  asm("" : "+v"(x));
  return x;
}
inline VF rounded(VF x) {
  typename VF::register_type r = x;
  asm("" : "+v"(r));
  return r;
}
inline float vsqrt(float a) { return std::sqrt(a); }
inline VF vsqrt(VF a) { return xsimd::sqrt(a); }
// torch.maximum: NaN in either operand wins.
inline float vmax_nan(float a, float b) { return std::isnan(a) || a > b ? a : b; }
inline VF vmax_nan(VF a, VF b) { return xsimd::select(xsimd::isnan(a) || a > b, a, b); }

template <class V>
V ld(const float* p);
template <>
inline float ld<float>(const float* p) {
  return *p;
}
template <>
inline VF ld<VF>(const float* p) {
  return VF::load_unaligned(p);
}
inline void st(float* p, float v) { *p = v; }
inline void st(float* p, VF v) { v.store_unaligned(p); }

// Runs body.template operator()<V>(i) over [0, n): VF steps, then a float tail.
template <class Body>
void for_lanes(int64_t n, const Body& body) {
  int64_t i = 0;
  for (; i + W <= n; i += W) body.template operator()<VF>(i);
  for (; i < n; ++i) body.template operator()<float>(i);
}

}  // namespace

// ---- SGD -------------------------------------------------------------------------

void sgd_update(float* p, const float* g, float* buf, int64_t n, const SgdStep& c) {
  const bool decay = c.weight_decay != 0;
  for_lanes(n, [&]<class V>(int64_t k) {
    V pk = ld<V>(p + k);
    V d = ld<V>(g + k);
    if (decay) d = vfma(pk, V(c.weight_decay), d);
    if (buf) {
      V b = c.first ? d : vfma(d, V(c.one_minus_damp), ld<V>(buf + k) * V(c.momentum));
      st(buf + k, b);
      d = c.nesterov ? vfma(b, V(c.momentum), d) : b;
    }
    st(p + k, vfma(d, V(c.neg_lr), pk));
  });
}

void sgd_update_ref(float* p, const float* g, float* buf, int64_t n, const SgdStep& c) {
  for (int64_t i = 0; i < n; ++i) {
    float d = c.weight_decay != 0 ? std::fma(p[i], c.weight_decay, g[i]) : g[i];
    if (buf) {
      buf[i] = c.first ? d : std::fma(d, c.one_minus_damp, rounded(buf[i] * c.momentum));
      d = c.nesterov ? std::fma(buf[i], c.momentum, d) : buf[i];
    }
    p[i] = std::fma(d, c.neg_lr, p[i]);
  }
}

// ---- Adam / AdamW -----------------------------------------------------------------

void adam_update(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                 const AdamStep& c) {
  const bool l2 = c.weight_decay != 0, decay = c.decay != 1.f;
  for_lanes(n, [&]<class V>(int64_t k) {
    V pk = ld<V>(p + k);
    V gk = ld<V>(g + k);
    if (l2) gk = vfma(pk, V(c.weight_decay), gk);
    if (decay) pk = rounded(pk * V(c.decay));  // param.mul_(1 - lr*wd): its own rounding
    const V mk = vfma(gk, V(c.one_minus_beta1), ld<V>(m + k) * V(c.beta1));
    V vk = vfma(V(c.one_minus_beta2) * gk, gk, ld<V>(v + k) * V(c.beta2));
    st(m + k, mk);
    st(v + k, vk);
    if (vmax) {
      vk = vmax_nan(ld<V>(vmax + k), vk);
      st(vmax + k, vk);
    }
    const V denom = vsqrt(vk) / V(c.bc2_sqrt) + V(c.eps);
    st(p + k, pk + (V(c.neg_step_size) * mk) / denom);
  });
}

void adam_update_ref(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                     const AdamStep& c) {
  for (int64_t i = 0; i < n; ++i) {
    const float grad = c.weight_decay != 0 ? std::fma(p[i], c.weight_decay, g[i]) : g[i];
    const float param = c.decay != 1.f ? rounded(p[i] * c.decay) : p[i];
    m[i] = std::fma(grad, c.one_minus_beta1, rounded(m[i] * c.beta1));
    v[i] = std::fma(rounded(c.one_minus_beta2 * grad), grad, rounded(v[i] * c.beta2));
    float vhat = v[i];
    if (vmax) {
      if (std::isnan(vmax[i]) || vmax[i] > vhat) vhat = vmax[i];
      vmax[i] = vhat;
    }
    const float denom = rounded(std::sqrt(vhat) / c.bc2_sqrt) + c.eps;
    p[i] = param + rounded(c.neg_step_size * m[i]) / denom;
  }
}

}  // namespace qkv
