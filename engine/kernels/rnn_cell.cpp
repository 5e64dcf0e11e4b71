// LSTM and GRU step kernels: SIMD over the hidden units of each batch row,
// scalar *_ref oracles below each. The per-element math is written once per
// cell as a template over the value type (float for the refs and tails, the
// xsimd batch for the vector body), so the two cannot drift apart.
#include "engine/kernels/rnn_cell.h"

#include <cmath>

#include "engine/simd.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

inline float sig(float x) { return 1.f / (1.f + std::exp(-x)); }
inline VF sig(VF x) { return VF(1.f) / (VF(1.f) + xsimd::exp(-x)); }
inline float tanh_(float x) { return std::tanh(x); }
inline VF tanh_(VF x) { return xsimd::tanh(x); }

template <class V>
V get(const float* p) {
  if constexpr (std::is_same_v<V, float>) return *p;
  else return V::load_unaligned(p);
}
template <class V>
void put(float* p, V v) {
  if constexpr (std::is_same_v<V, float>) *p = v;
  else v.store_unaligned(p);
}

// ---- LSTM ---------------------------------------------------------------------
// One group of hidden units j (a vector or a scalar) of one row.
template <class V>
inline void lstm_fwd_at(float* g, const float* c_prev, float* c, float* h, int64_t H, int64_t j) {
  const V i = sig(get<V>(g + j)), f = sig(get<V>(g + H + j));
  const V gg = tanh_(get<V>(g + 2 * H + j)), o = sig(get<V>(g + 3 * H + j));
  const V cn = f * get<V>(c_prev + j) + i * gg;
  put(g + j, i);
  put(g + H + j, f);
  put(g + 2 * H + j, gg);
  put(g + 3 * H + j, o);
  put(c + j, cn);
  put(h + j, o * tanh_(cn));
}

// In the forward: c = f c_prev + i g, h = o tanh(c). Hence, with
// dc_t = dc + dh o (1 - tanh(c)^2):
//   do = dh tanh(c) o(1-o); di = dc_t g i(1-i); df = dc_t c_prev f(1-f);
//   dg = dc_t i (1-g^2); dc_prev = dc_t f.
template <class V>
inline void lstm_bwd_at(const float* a, const float* c_prev, const float* c, const float* dh,
                        float* dc, float* dg, int64_t H, int64_t j) {
  const V i = get<V>(a + j), f = get<V>(a + H + j), g = get<V>(a + 2 * H + j),
          o = get<V>(a + 3 * H + j);
  const V tc = tanh_(get<V>(c + j)), dhv = get<V>(dh + j);
  const V one(1.f);
  const V dct = get<V>(dc + j) + dhv * o * (one - tc * tc);
  put(dg + j, dct * g * i * (one - i));
  put(dg + H + j, dct * get<V>(c_prev + j) * f * (one - f));
  put(dg + 2 * H + j, dct * i * (one - g * g));
  put(dg + 3 * H + j, dhv * tc * o * (one - o));
  put(dc + j, dct * f);
}

// ---- GRU -----------------------------------------------------------------------
template <class V>
inline void gru_fwd_at(const float* gx, const float* gh, const float* hp, float* h, float* a,
                       int64_t H, int64_t j) {
  const V r = sig(get<V>(gx + j) + get<V>(gh + j));
  const V z = sig(get<V>(gx + H + j) + get<V>(gh + H + j));
  const V n = tanh_(get<V>(gx + 2 * H + j) + r * get<V>(gh + 2 * H + j));
  put(a + j, r);
  put(a + H + j, z);
  put(a + 2 * H + j, n);
  put(h + j, (V(1.f) - z) * n + z * get<V>(hp + j));
}

// In the forward: h = (1-z) n + z h_prev, n = tanh(gx_n + r gh_n). Hence
//   dn_pre = dh (1-z)(1-n^2); dz_pre = dh (h_prev - n) z(1-z);
//   dr_pre = dn_pre gh_n r(1-r); dgx = [dr_pre, dz_pre, dn_pre];
//   dgh = [dr_pre, dz_pre, dn_pre r]; direct part of dh_prev = dh z.
template <class V>
inline void gru_bwd_at(const float* a, const float* gh, const float* hp, const float* dh,
                       float* dgx, float* dgh, float* dhp, int64_t H, int64_t j) {
  const V r = get<V>(a + j), z = get<V>(a + H + j), n = get<V>(a + 2 * H + j);
  const V d = get<V>(dh + j), one(1.f);
  const V dn = d * (one - z) * (one - n * n);
  const V dz = d * (get<V>(hp + j) - n) * z * (one - z);
  const V dr = dn * get<V>(gh + 2 * H + j) * r * (one - r);
  put(dgx + j, dr);
  put(dgx + H + j, dz);
  put(dgx + 2 * H + j, dn);
  put(dgh + j, dr);
  put(dgh + H + j, dz);
  put(dgh + 2 * H + j, dn * r);
  put(dhp + j, d * z);
}

// Runs f(j) over a row: vectors, then a scalar tail (or all scalar for refs).
template <bool kSimd, class VecFn, class ScalarFn>
inline void row_loop(int64_t H, VecFn vec, ScalarFn scal) {
  int64_t j = 0;
  if constexpr (kSimd)
    for (; j + W <= H; j += W) vec(j);
  for (; j < H; ++j) scal(j);
}

template <bool kSimd>
void lstm_forward_impl(float* gates, const float* c_prev, float* c, float* h, int64_t B,
                       int64_t H, const uint8_t* active) {
  for (int64_t b = 0; b < B; ++b) {
    if (active && !active[b]) continue;
    float* g = gates + b * 4 * H;
    const float* cp = c_prev + b * H;
    float *cb = c + b * H, *hb = h + b * H;
    row_loop<kSimd>(
        H, [&](int64_t j) { lstm_fwd_at<VF>(g, cp, cb, hb, H, j); },
        [&](int64_t j) { lstm_fwd_at<float>(g, cp, cb, hb, H, j); });
  }
}

template <bool kSimd>
void lstm_backward_impl(const float* act, const float* c_prev, const float* c, const float* dh,
                        float* dc, float* dgates, int64_t B, int64_t H, const uint8_t* active) {
  for (int64_t b = 0; b < B; ++b) {
    if (active && !active[b]) continue;
    const float *a = act + b * 4 * H, *cp = c_prev + b * H, *cb = c + b * H, *d = dh + b * H;
    float *dcb = dc + b * H, *dg = dgates + b * 4 * H;
    row_loop<kSimd>(
        H, [&](int64_t j) { lstm_bwd_at<VF>(a, cp, cb, d, dcb, dg, H, j); },
        [&](int64_t j) { lstm_bwd_at<float>(a, cp, cb, d, dcb, dg, H, j); });
  }
}

template <bool kSimd>
void gru_forward_impl(const float* gx, const float* gh, const float* h_prev, float* h,
                      float* act, int64_t B, int64_t H, const uint8_t* active) {
  for (int64_t b = 0; b < B; ++b) {
    if (active && !active[b]) continue;
    const float *x = gx + b * 3 * H, *hh = gh + b * 3 * H, *hp = h_prev + b * H;
    float *hb = h + b * H, *a = act + b * 3 * H;
    row_loop<kSimd>(
        H, [&](int64_t j) { gru_fwd_at<VF>(x, hh, hp, hb, a, H, j); },
        [&](int64_t j) { gru_fwd_at<float>(x, hh, hp, hb, a, H, j); });
  }
}

template <bool kSimd>
void gru_backward_impl(const float* act, const float* gh, const float* h_prev, const float* dh,
                       float* dgx, float* dgh, float* dhp, int64_t B, int64_t H,
                       const uint8_t* active) {
  for (int64_t b = 0; b < B; ++b) {
    if (active && !active[b]) continue;
    const float *a = act + b * 3 * H, *hh = gh + b * 3 * H, *hp = h_prev + b * H,
                *d = dh + b * H;
    float *x = dgx + b * 3 * H, *y = dgh + b * 3 * H, *p = dhp + b * H;
    row_loop<kSimd>(
        H, [&](int64_t j) { gru_bwd_at<VF>(a, hh, hp, d, x, y, p, H, j); },
        [&](int64_t j) { gru_bwd_at<float>(a, hh, hp, d, x, y, p, H, j); });
  }
}

}  // namespace

void lstm_cell_forward(float* gates, const float* c_prev, float* c, float* h, int64_t B,
                       int64_t H, const uint8_t* active) {
  lstm_forward_impl<true>(gates, c_prev, c, h, B, H, active);
}
void lstm_cell_forward_ref(float* gates, const float* c_prev, float* c, float* h, int64_t B,
                           int64_t H, const uint8_t* active) {
  lstm_forward_impl<false>(gates, c_prev, c, h, B, H, active);
}
void lstm_cell_backward(const float* act, const float* c_prev, const float* c, const float* dh,
                        float* dc, float* dgates, int64_t B, int64_t H, const uint8_t* active) {
  lstm_backward_impl<true>(act, c_prev, c, dh, dc, dgates, B, H, active);
}
void lstm_cell_backward_ref(const float* act, const float* c_prev, const float* c,
                            const float* dh, float* dc, float* dgates, int64_t B, int64_t H,
                            const uint8_t* active) {
  lstm_backward_impl<false>(act, c_prev, c, dh, dc, dgates, B, H, active);
}
void gru_cell_forward(const float* gx, const float* gh, const float* h_prev, float* h, float* act,
                      int64_t B, int64_t H, const uint8_t* active) {
  gru_forward_impl<true>(gx, gh, h_prev, h, act, B, H, active);
}
void gru_cell_forward_ref(const float* gx, const float* gh, const float* h_prev, float* h,
                          float* act, int64_t B, int64_t H, const uint8_t* active) {
  gru_forward_impl<false>(gx, gh, h_prev, h, act, B, H, active);
}
void gru_cell_backward(const float* act, const float* gh, const float* h_prev, const float* dh,
                       float* dgx, float* dgh, float* dhp, int64_t B, int64_t H,
                       const uint8_t* active) {
  gru_backward_impl<true>(act, gh, h_prev, dh, dgx, dgh, dhp, B, H, active);
}
void gru_cell_backward_ref(const float* act, const float* gh, const float* h_prev,
                           const float* dh, float* dgx, float* dgh, float* dhp, int64_t B,
                           int64_t H, const uint8_t* active) {
  gru_backward_impl<false>(act, gh, h_prev, dh, dgx, dgh, dhp, B, H, active);
}

}  // namespace qkv
