#include "engine/kernels/conv.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "engine/kernels/gemm.h"
#include "engine/threads.h"

namespace qkv {

// ---- geometry ---------------------------------------------------------------------------
Conv2dGeom conv2d_geom(const Shape& x, const Shape& w, const Shape* b, const Conv2dSpec& s,
                       const char* op) {
  check(x.size() == 4, op, ": expected x of shape [N,C,IH,IW], got ", x);
  check(w.size() == 4, op, ": expected w of shape [O,C/groups,KH,KW], got ", w);
  check(s.stride_h > 0 && s.stride_w > 0, op, ": stride must be positive, got (", s.stride_h, ",",
        s.stride_w, ")");
  check(s.dil_h > 0 && s.dil_w > 0, op, ": dilation must be positive, got (", s.dil_h, ",",
        s.dil_w, ")");
  check(s.pad_h >= 0 && s.pad_w >= 0, op, ": padding must be >= 0, got (", s.pad_h, ",", s.pad_w,
        ")");
  check(s.groups > 0, op, ": groups must be positive, got ", s.groups);
  Conv2dGeom g{};
  g.s = s;
  g.N = x[0], g.C = x[1], g.IH = x[2], g.IW = x[3];
  g.O = w[0], g.KH = w[2], g.KW = w[3], g.G = s.groups;
  check(g.C % g.G == 0, op, ": input channels ", g.C, " not divisible by groups ", g.G, " (x ", x,
        ", w ", w, ")");
  check(g.O % g.G == 0, op, ": output channels ", g.O, " not divisible by groups ", g.G, " (x ",
        x, ", w ", w, ")");
  g.Cg = g.C / g.G, g.Og = g.O / g.G;
  check(w[1] == g.Cg, op, ": w has ", w[1], " input channels per group, expected ", g.Cg,
        " (x ", x, ", w ", w, ", groups ", g.G, ")");
  check(g.KH > 0 && g.KW > 0 && g.O > 0, op, ": empty kernel: w ", w);
  if (b) check(*b == Shape{g.O}, op, ": bias has shape ", *b, ", expected [", g.O, "] (w ", w, ")");
  const int64_t ekh = s.dil_h * (g.KH - 1) + 1, ekw = s.dil_w * (g.KW - 1) + 1;
  const int64_t ph = g.IH + 2 * s.pad_h, pw = g.IW + 2 * s.pad_w;
  check(ekh <= ph && ekw <= pw, op, ": kernel (dilated ", ekh, "x", ekw,
        ") larger than padded input ", ph, "x", pw, " (x ", x, ", w ", w, ")");
  g.OH = (ph - ekh) / s.stride_h + 1;
  g.OW = (pw - ekw) / s.stride_w + 1;
  return g;
}

namespace {

// Output columns [lo, hi) whose input column ow*stride + off lies in [0, IW).
std::pair<int64_t, int64_t> valid_cols(int64_t off, int64_t stride, int64_t IW, int64_t OW) {
  const int64_t lo = off >= 0 ? 0 : std::min(OW, (-off + stride - 1) / stride);
  const int64_t hi = IW - 1 - off < 0 ? 0 : std::min(OW, (IW - 1 - off) / stride + 1);
  return {lo, std::max(lo, hi)};
}

// One im2col row segment: r[ow] = line[ow * sw] for ow in [lo, hi), 0 elsewhere in [0, OW).
inline void im2col_row_scalar(float* r, const float* line, int64_t sw, int64_t lo, int64_t hi,
                              int64_t OW) {
  for (int64_t ow = 0; ow < lo; ++ow) r[ow] = 0.f;
  if (sw == 1)
    for (int64_t ow = lo; ow < hi; ++ow) r[ow] = line[ow];
  else
    for (int64_t ow = lo; ow < hi; ++ow) r[ow] = line[ow * sw];
  for (int64_t ow = hi; ow < OW; ++ow) r[ow] = 0.f;
}

#if defined(__AVX512F__)
// Bits of the 16 lanes of the chunk starting at j0 that fall in [a, b).
inline __mmask16 lanes_in(int64_t j0, int64_t a, int64_t b) {
  const int64_t lo = std::clamp<int64_t>(a - j0, 0, 16), hi = std::clamp<int64_t>(b - j0, 0, 16);
  return __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
#endif

// col[(c*KH + kh)*KW + kw][oh*OW + ow] = src[c][ih][iw] (0 outside), Cg channels;
// col rows are ld floats apart (ld >= OH*OW: several images side by side).
// With stride 1 (every 3x3 / 7x7 "same" conv) each output row is a shifted
// run of an input row: with AVX-512, 16 lanes per masked load (lanes outside
// [lo, hi) read nothing and give 0) and masked store, the masks fixed per tap.
// The compiler-vectorised row loops (variable trip counts and alias checks on
// 28-float rows) ran at about 1 float per cycle: im2col was 16% of a
// conv + CBAM step (three passes: forward, dW, and the transposed conv for dX).
void im2col(const float* src, const Conv2dGeom& g, float* col, int64_t ld) {
  const auto& s = g.s;
  const int64_t sw = s.stride_w;
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        float* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        const float* plane = src + c * g.IH * g.IW;
        const int64_t off = kw * s.dil_w - s.pad_w;
        const auto [lo, hi] = valid_cols(off, sw, g.IW, g.OW);
#if defined(__AVX512F__)
        if (sw == 1 && g.OW <= 64) {
          const int64_t nchunk = (g.OW + 15) / 16;
          __mmask16 ld_mask[4], st_mask[4];
          for (int64_t j = 0; j < nchunk; ++j) {
            ld_mask[j] = lanes_in(16 * j, lo, hi);
            st_mask[j] = lanes_in(16 * j, 0, g.OW);
          }
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            float* r = row + oh * g.OW;
            const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
            const bool inside = ih >= 0 && ih < g.IH;
            const float* line = inside ? plane + ih * g.IW + off : plane;
            for (int64_t j = 0; j < nchunk; ++j) {
              const __m512 v = inside ? _mm512_maskz_loadu_ps(ld_mask[j], line + 16 * j)
                                      : _mm512_setzero_ps();
              _mm512_mask_storeu_ps(r + 16 * j, st_mask[j], v);
            }
          }
          continue;
        }
#endif
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          float* r = row + oh * g.OW;
          const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
          if (ih < 0 || ih >= g.IH) {
            for (int64_t ow = 0; ow < g.OW; ++ow) r[ow] = 0.f;
            continue;
          }
          im2col_row_scalar(r, plane + ih * g.IW + off, sw, lo, hi, g.OW);
        }
      }
}

// dst[c][ih][iw] += col[...] (the adjoint of im2col), Cg channels, col rows ld apart.
void col2im(const float* col, const Conv2dGeom& g, float* dst, int64_t ld) {
  const auto& s = g.s;
  const int64_t sw = s.stride_w;
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        float* plane = dst + c * g.IH * g.IW;
        const int64_t off = kw * s.dil_w - s.pad_w;
        const auto [lo, hi] = valid_cols(off, sw, g.IW, g.OW);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
          if (ih < 0 || ih >= g.IH) continue;
          const float* r = row + oh * g.OW;
          float* line = plane + ih * g.IW + off;
          if (sw == 1)
            for (int64_t ow = lo; ow < hi; ++ow) line[ow] += r[ow];
          else
            for (int64_t ow = lo; ow < hi; ++ow) line[ow * sw] += r[ow];
        }
      }
}

bool is_pointwise(const Conv2dGeom& g) {
  const auto& s = g.s;
  return g.KH == 1 && g.KW == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
         s.pad_w == 0;
}

const Shape* bias_shape(const Tensor& b) { return b.defined() ? &b.shape() : nullptr; }

// Scratch of n floats (undefined when n == 0) from the tensor allocator, whose
// cache of large blocks hands the same memory back call after call: fresh
// std::vectors here were page-faulted and zeroed by the kernel on every call
// (19% of a conv + CBAM step in clear_page, profiled).
Tensor scratch(int64_t n) { return n > 0 ? Tensor(Shape{n}) : Tensor(); }

// ---- image batches for the GEMM path ------------------------------------------------------
// One GEMM per image has only OH*OW columns (196 at 14x14): too few to run near
// peak (81 GFLOP/s for 32->64 at 14x14, measured). Several images im2col'd side
// by side give one GEMM with images*OH*OW columns. A batch grows to about
// kTargetCols columns, capped so that its col buffer (written, then read by the
// GEMM) stays within kColFloats, half the L2.
constexpr int64_t kTargetCols = 1024;
constexpr int64_t kColFloats = int64_t(1) << 18;  // 1 MiB

}  // namespace

int64_t conv2d_images_per_gemm(const Conv2dGeom& g) {
  if (is_pointwise(g)) return 1;
  const int64_t OHW = g.OH * g.OW, CKK = g.Cg * g.KH * g.KW;
  const int64_t by_cols = (kTargetCols + OHW - 1) / OHW;
  const int64_t by_mem = kColFloats / std::max<int64_t>(1, CKK * OHW);
  return std::max<int64_t>(1, std::min({by_cols, by_mem, g.N}));
}

namespace {

// Images [m0, m1) of group gi side by side: col[CKK, (m1-m0)*OH*OW].
void im2col_batch(const float* x, const Conv2dGeom& g, int64_t gi, int64_t m0, int64_t m1,
                  float* col) {
  const int64_t OHW = g.OH * g.OW, ld = (m1 - m0) * OHW;
  for (int64_t n = m0; n < m1; ++n)
    im2col(x + (n * g.C + gi * g.Cg) * g.IH * g.IW, g, col + (n - m0) * OHW, ld);
}

// dy: [N,O,OH,OW] -> dyb[Og, (m1-m0)*OH*OW], group gi's channels of images [m0, m1).
void gather_dy_batch(const float* dy, const Conv2dGeom& g, int64_t gi, int64_t m0, int64_t m1,
                     float* dyb) {
  const int64_t OHW = g.OH * g.OW, ld = (m1 - m0) * OHW;
  for (int64_t o = 0; o < g.Og; ++o)
    for (int64_t n = m0; n < m1; ++n)
      std::copy_n(dy + (n * g.O + gi * g.Og + o) * OHW, OHW, dyb + o * ld + (n - m0) * OHW);
}

// out[Og, (m1-m0)*OH*OW] (+ bias) -> y: [N,O,OH,OW], group gi's channels of images [m0, m1).
void scatter_y_batch(const float* out, const float* bias, const Conv2dGeom& g, int64_t gi,
                     int64_t m0, int64_t m1, float* y) {
  const int64_t OHW = g.OH * g.OW, ld = (m1 - m0) * OHW;
  for (int64_t n = m0; n < m1; ++n)
    for (int64_t o = 0; o < g.Og; ++o) {
      const float* src = out + o * ld + (n - m0) * OHW;
      float* dst = y + (n * g.O + gi * g.Og + o) * OHW;
      const float bv = bias ? bias[gi * g.Og + o] : 0.f;
      for (int64_t i = 0; i < OHW; ++i) dst[i] = src[i] + bv;
    }
}

// ---- direct convolution (few output channels per group) -------------------------------
// With Og <= 4 the GEMM degenerates to a GEMV over a kh*kw-times inflated
// col buffer (CBAM's 7x7 2->1 conv: M = 1); the direct loops read the image
// in place and vectorise along output rows instead.

// Calls fn(oh, ih, lo, hi, off) for every output row oh whose input row ih
// (for kernel tap kh, kw) is inside the image, with that tap's column range.
template <class Fn>
void for_tap_rows(const Conv2dGeom& g, int64_t kh, int64_t kw, Fn fn) {
  const auto& s = g.s;
  const int64_t off = kw * s.dil_w - s.pad_w;
  const auto [lo, hi] = valid_cols(off, s.stride_w, g.IW, g.OW);
  if (lo >= hi) return;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
    if (ih >= 0 && ih < g.IH) fn(oh, ih, lo, hi, off);
  }
}

// out[o] plane of image n (+ bias): out[oh, ow] += w * x[c, ih, ow*sw + off].
void direct_forward_plane(const float* xn, const float* w, float bias, const Conv2dGeom& g,
                          int64_t o, float* out) {
  const int64_t gi = o / g.Og, sw = g.s.stride_w;
  std::fill(out, out + g.OH * g.OW, bias);
  for (int64_t c = 0; c < g.Cg; ++c) {
    const float* plane = xn + (gi * g.Cg + c) * g.IH * g.IW;
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float wv = w[((o * g.Cg + c) * g.KH + kh) * g.KW + kw];
        for_tap_rows(g, kh, kw, [&](int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t off) {
          const float* in = plane + ih * g.IW + off;
          float* r = out + oh * g.OW;
          if (sw == 1)
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] += wv * in[ow];
          else
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] += wv * in[ow * sw];
        });
      }
  }
}

// dx plane (n, channel gi*Cg + c): the adjoint of the forward's taps, summed over
// the group's output channels: dx[ih, ow*sw + off] += w * dy[o, oh, ow].
void direct_dx_plane(const float* dyn, const float* w, const Conv2dGeom& g, int64_t ch,
                     float* dxp) {
  const int64_t gi = ch / g.Cg, c = ch % g.Cg, sw = g.s.stride_w;
  std::fill(dxp, dxp + g.IH * g.IW, 0.f);
  for (int64_t o = gi * g.Og; o < (gi + 1) * g.Og; ++o) {
    const float* dyo = dyn + o * g.OH * g.OW;
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float wv = w[((o * g.Cg + c) * g.KH + kh) * g.KW + kw];
        for_tap_rows(g, kh, kw, [&](int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t off) {
          float* d = dxp + ih * g.IW + off;
          const float* r = dyo + oh * g.OW;
          if (sw == 1)
            for (int64_t ow = lo; ow < hi; ++ow) d[ow] += wv * r[ow];
          else
            for (int64_t ow = lo; ow < hi; ++ow) d[ow * sw] += wv * r[ow];
        });
      }
  }
}

// dw[o, c, kh, kw] = sum over n, oh, ow of dy[n, o, oh, ow] * x[n, c, ih, ow*sw + off].
float direct_dw_entry(const float* x, const float* dy, const Conv2dGeom& g, int64_t o, int64_t c,
                      int64_t kh, int64_t kw) {
  const int64_t gi = o / g.Og, sw = g.s.stride_w;
  double acc = 0;
  for (int64_t n = 0; n < g.N; ++n) {
    const float* plane = x + (n * g.C + gi * g.Cg + c) * g.IH * g.IW;
    const float* dyo = dy + (n * g.O + o) * g.OH * g.OW;
    float part = 0.f;
    for_tap_rows(g, kh, kw, [&](int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t off) {
      const float* in = plane + ih * g.IW + off;
      const float* r = dyo + oh * g.OW;
      float t = 0.f;
      if (sw == 1)
        for (int64_t ow = lo; ow < hi; ++ow) t += r[ow] * in[ow];
      else
        for (int64_t ow = lo; ow < hi; ++ow) t += r[ow] * in[ow * sw];
      part += t;
    });
    acc += part;
  }
  return float(acc);
}

}  // namespace

bool conv2d_uses_direct(const Conv2dGeom& g) { return g.Og <= 4 && !is_pointwise(g); }

// ---- convolution forward ------------------------------------------------------------------
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dSpec& s) {
  const Conv2dGeom g = conv2d_geom(x.shape(), w.shape(), bias_shape(b), s);
  Tensor y(Shape{g.N, g.O, g.OH, g.OW});
  const int64_t OHW = g.OH * g.OW, CKK = g.Cg * g.KH * g.KW, IHW = g.IH * g.IW;
  const bool pw = is_pointwise(g);
  const float* xp = x.data();
  const float* wp = w.data();
  const float* bp = b.defined() ? b.data() : nullptr;
  float* yp = y.data();
  const int nt = num_threads();
  const int64_t flops = g.N * g.O * OHW * CKK;
  if (conv2d_uses_direct(g)) {
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(flops / 4))
    for (int64_t t = 0; t < g.N * g.O; ++t)
      direct_forward_plane(xp + (t / g.O) * g.C * IHW, wp, bp ? bp[t % g.O] : 0.f, g, t % g.O,
                           yp + t * OHW);
    return y;
  }
  // Near-equal batches of at most nb images, split by N and nb only: the GEMM
  // may take another path for another column count, and the bits must not
  // depend on the thread count. A single batch gets the threads inside its GEMM.
  const int64_t nb = conv2d_images_per_gemm(g);
  const int64_t nbatch = (g.N + nb - 1) / nb;
  const int64_t max_cols = (nbatch > 0 ? (g.N + nbatch - 1) / nbatch : 0) * OHW;
#pragma omp parallel num_threads(nt) if (nt > 1 && nbatch > 1 && worth_threads(flops / 16))
  {
    Tensor col = scratch(pw ? 0 : CKK * max_cols);
    Tensor out = scratch(pw || max_cols == OHW ? 0 : g.Og * max_cols);
#pragma omp for schedule(static)
    for (int64_t bi = 0; bi < nbatch; ++bi) {
      const int64_t m0 = g.N * bi / nbatch, m1 = g.N * (bi + 1) / nbatch, cols = (m1 - m0) * OHW;
      for (int64_t gi = 0; gi < g.G; ++gi) {
        const float* wg = wp + gi * g.Og * CKK;
        if (pw || m1 - m0 == 1) {  // the GEMM writes the image's planes in place
          const float* cp = xp + (m0 * g.C + gi * g.Cg) * IHW;
          if (!pw) {
            im2col(cp, g, col.data(), OHW);
            cp = col.data();
          }
          float* yg = yp + (m0 * g.O + gi * g.Og) * OHW;
          gemm(false, false, g.Og, OHW, CKK, 1.f, wg, CKK, cp, OHW, 0.f, yg, OHW);
          if (bp)
            for (int64_t o = 0; o < g.Og; ++o)
              for (int64_t i = 0; i < OHW; ++i) yg[o * OHW + i] += bp[gi * g.Og + o];
        } else {
          im2col_batch(xp, g, gi, m0, m1, col.data());
          gemm(false, false, g.Og, cols, CKK, 1.f, wg, CKK, col.data(), cols, 0.f, out.data(),
               cols);
          scatter_y_batch(out.data(), bp, g, gi, m0, m1, yp);
        }
      }
    }
  }
  return y;
}

Tensor conv2d_forward_ref(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dSpec& s) {
  const Conv2dGeom g = conv2d_geom(x.shape(), w.shape(), bias_shape(b), s);
  Tensor y(Shape{g.N, g.O, g.OH, g.OW});
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o) {
      const int64_t gi = o / g.Og;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double acc = b.defined() ? double(b.data()[o]) : 0.0;
          for (int64_t c = 0; c < g.Cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
                const int64_t iw = ow * s.stride_w - s.pad_w + kw * s.dil_w;
                if (ih < 0 || ih >= g.IH || iw < 0 || iw >= g.IW) continue;
                const double xv = x.data()[((n * g.C + gi * g.Cg + c) * g.IH + ih) * g.IW + iw];
                const double wv = w.data()[((o * g.Cg + c) * g.KH + kh) * g.KW + kw];
                acc += xv * wv;
              }
          y.data()[((n * g.O + o) * g.OH + oh) * g.OW + ow] = float(acc);
        }
    }
  return y;
}

// ---- convolution backward -----------------------------------------------------------------
namespace {
// The geometry of a backward call, with dy checked against it.
Conv2dGeom backward_geom(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dSpec& s) {
  const Conv2dGeom g = conv2d_geom(x.shape(), w.shape(), nullptr, s, "conv2d_backward");
  check(dy.shape() == Shape{g.N, g.O, g.OH, g.OW}, "conv2d_backward: dy has shape ", dy.shape(),
        ", expected ", Shape{g.N, g.O, g.OH, g.OW});
  return g;
}

// For stride 1, dX is the convolution of dY (padded by dil*(K-1) - pad) with
// the kernel flipped in space and transposed in channels, within each group.
bool transposed_conv_fits(const Conv2dGeom& g) {
  const auto& s = g.s;
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_h <= s.dil_h * (g.KH - 1) &&
         s.pad_w <= s.dil_w * (g.KW - 1);
}

Conv2dSpec transposed_spec(const Conv2dGeom& g) {
  const auto& s = g.s;
  return {1, 1, s.dil_h * (g.KH - 1) - s.pad_h, s.dil_w * (g.KW - 1) - s.pad_w, s.dil_h, s.dil_w,
          g.G};
}

// w: [O,Cg,KH,KW] -> [C,Og,KH,KW]: wt[gi*Cg + c, o, kh, kw] = w[gi*Og + o, c, KH-1-kh, KW-1-kw].
Tensor transposed_weight(const Tensor& w, const Conv2dGeom& g) {
  Tensor wt(Shape{g.C, g.Og, g.KH, g.KW});
  const int64_t KK = g.KH * g.KW;
  const float* src = w.data();
  float* dst = wt.data();
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t o = 0; o < g.Og; ++o)
      for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t k = 0; k < KK; ++k)
          dst[((gi * g.Cg + c) * g.Og + o) * KK + (KK - 1 - k)] =
              src[((gi * g.Og + o) * g.Cg + c) * KK + k];
  return wt;
}
}  // namespace

namespace {

// db[o] = sum of dY over N, OH, OW: per image in float, images summed in double.
Tensor conv2d_db(const Tensor& dy, const Conv2dGeom& g) {
  const int64_t OHW = g.OH * g.OW;
  const int nt = num_threads();
  const float* dyp = dy.data();
  Tensor db_t(Shape{g.O});
  float* db = db_t.data();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(dy.numel()))
  for (int64_t o = 0; o < g.O; ++o) {
    double acc = 0;
    for (int64_t n = 0; n < g.N; ++n) {
      const float* d = dyp + (n * g.O + o) * OHW;
      float part = 0.f;
      for (int64_t i = 0; i < OHW; ++i) part += d[i];
      acc += part;
    }
    db[o] = float(acc);
  }
  return db_t;
}

// The direct path (few output channels per group): dX plane by plane, dW entry
// by entry, no col buffer.
void conv2d_backward_direct(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeom& g,
                            bool need_dx, bool need_dw, Conv2dGrads& r) {
  const int64_t OHW = g.OH * g.OW, CKK = g.Cg * g.KH * g.KW, IHW = g.IH * g.IW;
  const int64_t flops = g.N * g.O * OHW * CKK;
  const int nt = num_threads();
  const float *xp = x.data(), *wp = w.data(), *dyp = dy.data();
  if (need_dx) {
    r.dx = Tensor(x.shape());
    float* dxp = r.dx.data();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(flops / 4))
    for (int64_t t = 0; t < g.N * g.C; ++t)
      direct_dx_plane(dyp + (t / g.C) * g.O * OHW, wp, g, t % g.C, dxp + t * IHW);
  }
  if (need_dw) {
    r.dw = Tensor(w.shape());
    float* dw = r.dw.data();
    const int64_t KK = g.KH * g.KW;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(flops / 4))
    for (int64_t i = 0; i < w.numel(); ++i)
      dw[i] = direct_dw_entry(xp, dyp, g, i / CKK, (i / KK) % g.Cg, (i / g.KW) % g.KH, i % g.KW);
  }
}

// The im2col path: a fixed partition of the images (by N only) into nblocks
// blocks, and of each block into batches of conv2d_images_per_gemm images.
// Per batch and group, dW_g^T [CKK, Og] of block blk is accumulated into
// partial[blk] (when need_dw) and, when dx (not null), dX by col2im of
// W_g^T dY_g. Threads split the blocks.
void conv2d_backward_blocks(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeom& g,
                            int64_t nblocks, bool need_dw, float* partial, float* dx) {
  const int64_t OHW = g.OH * g.OW, CKK = g.Cg * g.KH * g.KW, IHW = g.IH * g.IW;
  const bool pw = is_pointwise(g), dx_by_col = dx != nullptr;
  const int nt = num_threads();
  const float *xp = x.data(), *wp = w.data(), *dyp = dy.data();
  const int64_t nb = conv2d_images_per_gemm(g);
  const int64_t wn = w.numel();
  const int64_t flops = g.N * g.O * OHW * CKK * (int64_t(dx_by_col) + int64_t(need_dw));
#pragma omp parallel num_threads(nt) if (nt > 1 && nblocks > 1 && worth_threads(flops / 16))
  {
    Tensor col = scratch(pw || !need_dw ? 0 : CKK * nb * OHW);
    Tensor dcol = scratch(pw || !dx_by_col ? 0 : CKK * nb * OHW);
    Tensor dyb = scratch(nb > 1 && nblocks > 0 ? g.Og * nb * OHW : 0);
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t n0 = g.N * blk / nblocks, n1 = g.N * (blk + 1) / nblocks;
      float* pdw = need_dw ? partial + blk * wn : nullptr;
      for (int64_t m0 = n0; m0 < n1; m0 += nb) {
        const int64_t m1 = std::min(n1, m0 + nb), cols = (m1 - m0) * OHW;
        if (dx_by_col && !pw) std::fill(dx + m0 * g.C * IHW, dx + m1 * g.C * IHW, 0.f);
        for (int64_t gi = 0; gi < g.G; ++gi) {
          // dY_g [Og, cols]: in place for one image, else gathered.
          const float* dyg = dyp + (m0 * g.O + gi * g.Og) * OHW;
          if (m1 - m0 > 1) {
            gather_dy_batch(dyp, g, gi, m0, m1, dyb.data());
            dyg = dyb.data();
          }
          const float* wg = wp + gi * g.Og * CKK;
          if (need_dw) {
            const float* cp = xp + (m0 * g.C + gi * g.Cg) * IHW;  // pointwise: one image
            if (!pw) {
              im2col_batch(xp, g, gi, m0, m1, col.data());
              cp = col.data();
            }
            // dW_g^T[CKK, Og] (+)= col[CKK, cols] * dY_g^T: the large CKK as the
            // GEMM's M and dY read as a transposed B ran 1.7x faster than
            // dW_g = dY_g * col^T (M = Og = 64, col packed transposed), measured.
            gemm(false, true, CKK, g.Og, cols, 1.f, cp, cols, dyg, cols, m0 == n0 ? 0.f : 1.f,
                 pdw + gi * g.Og * CKK, g.Og);
          }
          if (dx_by_col) {
            float* dxg = dx + (m0 * g.C + gi * g.Cg) * IHW;
            if (pw) {
              gemm(true, false, CKK, OHW, g.Og, 1.f, wg, CKK, dyg, OHW, 0.f, dxg, OHW);
            } else {
              gemm(true, false, CKK, cols, g.Og, 1.f, wg, CKK, dyg, cols, 0.f, dcol.data(), cols);
              for (int64_t n = m0; n < m1; ++n)
                col2im(dcol.data() + (n - m0) * OHW, g, dx + (n * g.C + gi * g.Cg) * IHW, cols);
            }
          }
        }
      }
    }
  }
}

// dw [O,Cg,KH,KW] from the blocks' partial dW_g^T: dw[gi, o, k] = sum over
// blocks of partial[blk][gi][k, o], in block order (the same bits for any
// thread count).
Tensor conv2d_dw_from_partials(const Tensor& w, const Conv2dGeom& g, const float* partial,
                               int64_t nblocks) {
  Tensor dw_t(w.shape());
  if (g.N == 0) {
    dw_t.fill(0.f);
    return dw_t;
  }
  float* dw = dw_t.data();
  const int64_t wn = w.numel(), CKK = g.Cg * g.KH * g.KW;
  const int nt = num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(wn * nblocks))
  for (int64_t i = 0; i < wn; ++i) {
    const int64_t gi = i / (g.Og * CKK), o = (i / CKK) % g.Og, k = i % CKK;
    const size_t t = size_t(gi * g.Og * CKK + k * g.Og + o);
    float acc = partial[t];
    for (int64_t b = 1; b < nblocks; ++b) acc += partial[size_t(b * wn) + t];
    dw[i] = acc;
  }
  return dw_t;
}

}  // namespace

// Strategies: db by its own reduction; the direct path for few output channels
// per group; else dW by im2col GEMMs over a fixed image partition (reduced in
// block order), and dX either by the transposed convolution (stride 1, Og <=
// Cg: one more forward conv whose GEMMs have K = Og*KH*KW and batched images,
// no col2im scatter; measured at 1 thread: 64->64 at 28x28 fwd+bwd 101-106 ms
// vs 110-138 by col2im; 32->64 at 14x14 37-44 ms vs 32-34) or by col2im in the
// same blocks as dW.
Conv2dGrads conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dSpec& s,
                            bool need_dx, bool need_dw, bool need_db) {
  const Conv2dGeom g = backward_geom(x, w, dy, s);
  Conv2dGrads r;
  if (need_db) r.db = conv2d_db(dy, g);
  if (!need_dx && !need_dw) return r;
  if (conv2d_uses_direct(g)) {
    conv2d_backward_direct(x, w, dy, g, need_dx, need_dw, r);
    return r;
  }
  const bool dx_by_conv = need_dx && transposed_conv_fits(g) && g.Og <= g.Cg;
  const bool dx_by_col = need_dx && !dx_by_conv;
  // No blocks when only dX by the transposed conv is asked for.
  const int64_t nblocks = need_dw || dx_by_col ? std::min<int64_t>(g.N, 8) : 0;
  Tensor partial = scratch(need_dw ? nblocks * w.numel() : 0);
  if (dx_by_col) r.dx = Tensor(x.shape());
  conv2d_backward_blocks(x, w, dy, g, nblocks, need_dw, need_dw ? partial.data() : nullptr,
                         dx_by_col ? r.dx.data() : nullptr);
  if (dx_by_conv) r.dx = conv2d_forward(dy, transposed_weight(w, g), Tensor(), transposed_spec(g));
  if (need_dw) r.dw = conv2d_dw_from_partials(w, g, partial.data(), nblocks);
  return r;
}

Conv2dGrads conv2d_backward_ref(const Tensor& x, const Tensor& w, const Tensor& dy,
                                const Conv2dSpec& s, bool need_dx, bool need_dw, bool need_db) {
  const Conv2dGeom g = backward_geom(x, w, dy, s);
  std::vector<double> dx(size_t(x.numel()), 0.0), dw(size_t(w.numel()), 0.0), db(size_t(g.O), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o) {
      const int64_t gi = o / g.Og;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const double d = dy.data()[((n * g.O + o) * g.OH + oh) * g.OW + ow];
          db[size_t(o)] += d;
          for (int64_t c = 0; c < g.Cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
                const int64_t iw = ow * s.stride_w - s.pad_w + kw * s.dil_w;
                if (ih < 0 || ih >= g.IH || iw < 0 || iw >= g.IW) continue;
                const size_t xi = size_t(((n * g.C + gi * g.Cg + c) * g.IH + ih) * g.IW + iw);
                const size_t wi = size_t(((o * g.Cg + c) * g.KH + kh) * g.KW + kw);
                dx[xi] += d * double(w.data()[wi]);
                dw[wi] += d * double(x.data()[xi]);
              }
        }
    }
  auto to_tensor = [](const std::vector<double>& v, const Shape& sh) {
    Tensor t(sh);
    for (size_t i = 0; i < v.size(); ++i) t.data()[i] = float(v[i]);
    return t;
  };
  Conv2dGrads r;
  if (need_dx) r.dx = to_tensor(dx, x.shape());
  if (need_dw) r.dw = to_tensor(dw, w.shape());
  if (need_db) r.db = to_tensor(db, Shape{g.O});
  return r;
}

// ---- pooling ------------------------------------------------------------------------------
std::pair<int64_t, int64_t> pool2d_out_hw(const Shape& x, const Pool2dSpec& p, const char* op) {
  check(x.size() == 4, op, ": expected x of shape [N,C,IH,IW], got ", x);
  check(p.kh > 0 && p.kw > 0, op, ": kernel size must be positive, got ", p.kh, "x", p.kw);
  check(p.stride_h > 0 && p.stride_w > 0, op, ": stride must be positive, got (", p.stride_h,
        ",", p.stride_w, ")");
  check(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.kh && 2 * p.pad_w <= p.kw, op,
        ": padding (", p.pad_h, ",", p.pad_w, ") must be >= 0 and at most half the kernel ", p.kh,
        "x", p.kw);
  const int64_t ph = x[2] + 2 * p.pad_h, pw = x[3] + 2 * p.pad_w;
  check(p.kh <= ph && p.kw <= pw, op, ": kernel ", p.kh, "x", p.kw, " larger than padded input ",
        ph, "x", pw, " (x ", x, ")");
  return {(ph - p.kh) / p.stride_h + 1, (pw - p.kw) / p.stride_w + 1};
}

namespace {

MaxPool2dResult max_pool_impl(const Tensor& x, const Pool2dSpec& p, bool threaded) {
  // Not a structured binding: the OpenMP region below uses OH and OW, and clang
  // before 16 (Debian's, which builds the fuzz targets) cannot capture one there.
  const std::pair<int64_t, int64_t> out_hw = pool2d_out_hw(x.shape(), p, "max_pool2d");
  const int64_t OH = out_hw.first, OW = out_hw.second;
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  MaxPool2dResult r{Tensor(Shape{N, C, OH, OW}), IntTensor(Shape{N, C, OH, OW})};
  const float* xp = x.data();
  float* yp = r.y.data();
  int32_t* ip = r.idx.data();
  auto plane = [&](int64_t pl) {
    const float* src = xp + pl * IH * IW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
        float best = -std::numeric_limits<float>::infinity();
        int64_t bi = -1;
        for (int64_t kh = 0; kh < p.kh; ++kh) {
          const int64_t ih = h0 + kh;
          if (ih < 0 || ih >= IH) continue;
          for (int64_t kw = 0; kw < p.kw; ++kw) {
            const int64_t iw = w0 + kw;
            if (iw < 0 || iw >= IW) continue;
            const float v = src[ih * IW + iw];
            // first max in window order; NaN propagates (and wins once seen)
            if (bi < 0 || v > best || (v != v && best == best)) {
              best = v;
              bi = ih * IW + iw;
            }
          }
        }
        yp[(pl * OH + oh) * OW + ow] = best;
        ip[(pl * OH + oh) * OW + ow] = int32_t(bi);
      }
  };
  if (threaded)
    parallel_for(N * C, N * C * OH * OW * p.kh * p.kw, plane);
  else
    for (int64_t pl = 0; pl < N * C; ++pl) plane(pl);
  return r;
}

}  // namespace

MaxPool2dResult max_pool2d_forward(const Tensor& x, const Pool2dSpec& p) {
  return max_pool_impl(x, p, true);
}

MaxPool2dResult max_pool2d_forward_ref(const Tensor& x, const Pool2dSpec& p) {
  const auto [OH, OW] = pool2d_out_hw(x.shape(), p, "max_pool2d");
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  MaxPool2dResult r{Tensor(Shape{N, C, OH, OW}), IntTensor(Shape{N, C, OH, OW})};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double best = 0;
          int64_t bi = -1;
          for (int64_t kh = 0; kh < p.kh; ++kh)
            for (int64_t kw = 0; kw < p.kw; ++kw) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh;
              const int64_t iw = ow * p.stride_w - p.pad_w + kw;
              if (ih < 0 || ih >= IH || iw < 0 || iw >= IW) continue;
              const double v = x.at({n, c, ih, iw});
              if (bi < 0 || v > best) best = v, bi = ih * IW + iw;
            }
          r.y.at({n, c, oh, ow}) = float(best);
          r.idx.at({n, c, oh, ow}) = int32_t(bi);
        }
  return r;
}

Tensor max_pool2d_backward(const Tensor& dy, const IntTensor& idx, const Shape& x_shape) {
  check(x_shape.size() == 4, "max_pool2d_backward: expected x shape [N,C,IH,IW], got ", x_shape);
  check(dy.shape() == idx.shape() && dy.dim() == 4 && dy.size(0) == x_shape[0] &&
            dy.size(1) == x_shape[1],
        "max_pool2d_backward: dy ", dy.shape(), " / idx ", idx.shape(), " do not match x ",
        x_shape);
  Tensor dx = zeros(x_shape);
  const int64_t IHW = x_shape[2] * x_shape[3], OHW = dy.size(2) * dy.size(3);
  const float* d = dy.data();
  const int32_t* ip = idx.data();
  float* o = dx.data();
  parallel_for(x_shape[0] * x_shape[1], dx.numel() + dy.numel(), [&](int64_t pl) {
    for (int64_t i = 0; i < OHW; ++i) {
      const int32_t k = ip[pl * OHW + i];
      if (k >= 0) o[pl * IHW + k] += d[pl * OHW + i];
    }
  });
  return dx;
}

Tensor avg_pool2d_forward(const Tensor& x, const Pool2dSpec& p) {
  const std::pair<int64_t, int64_t> out_hw = pool2d_out_hw(x.shape(), p, "avg_pool2d");
  const int64_t OH = out_hw.first, OW = out_hw.second;
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  Tensor y(Shape{N, C, OH, OW});
  const float* xp = x.data();
  float* yp = y.data();
  const float inv = 1.f / float(p.kh * p.kw);
  parallel_for(N * C, N * C * OH * OW * p.kh * p.kw, [&](int64_t pl) {
    const float* src = xp + pl * IH * IW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + p.kh, IH);
        const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + p.kw, IW);
        float acc = 0.f;
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = ws; iw < we; ++iw) acc += src[ih * IW + iw];
        yp[(pl * OH + oh) * OW + ow] = acc * inv;
      }
  });
  return y;
}

Tensor avg_pool2d_forward_ref(const Tensor& x, const Pool2dSpec& p) {
  const auto [OH, OW] = pool2d_out_hw(x.shape(), p, "avg_pool2d");
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  Tensor y(Shape{N, C, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = 0;
          for (int64_t kh = 0; kh < p.kh; ++kh)
            for (int64_t kw = 0; kw < p.kw; ++kw) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh;
              const int64_t iw = ow * p.stride_w - p.pad_w + kw;
              if (ih >= 0 && ih < IH && iw >= 0 && iw < IW) acc += x.at({n, c, ih, iw});
            }
          y.at({n, c, oh, ow}) = float(acc / double(p.kh * p.kw));
        }
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dSpec& p) {
  const std::pair<int64_t, int64_t> out_hw = pool2d_out_hw(x_shape, p, "avg_pool2d_backward");
  const int64_t OH = out_hw.first, OW = out_hw.second;
  check(dy.shape() == Shape{x_shape[0], x_shape[1], OH, OW}, "avg_pool2d_backward: dy has shape ",
        dy.shape(), ", expected ", Shape{x_shape[0], x_shape[1], OH, OW});
  const int64_t IH = x_shape[2], IW = x_shape[3];
  Tensor dx = zeros(x_shape);
  const float* d = dy.data();
  float* o = dx.data();
  const float inv = 1.f / float(p.kh * p.kw);
  parallel_for(x_shape[0] * x_shape[1], dy.numel() * p.kh * p.kw, [&](int64_t pl) {
    float* dst = o + pl * IH * IW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float g = d[(pl * OH + oh) * OW + ow] * inv;
        const int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + p.kh, IH);
        const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + p.kw, IW);
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = ws; iw < we; ++iw) dst[ih * IW + iw] += g;
      }
  });
  return dx;
}

Tensor avg_pool2d_backward_ref(const Tensor& dy, const Shape& x_shape, const Pool2dSpec& p) {
  const auto [OH, OW] = pool2d_out_hw(x_shape, p, "avg_pool2d_backward");
  const int64_t N = x_shape[0], C = x_shape[1], IH = x_shape[2], IW = x_shape[3];
  std::vector<double> dx(size_t(N * C * IH * IW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t kh = 0; kh < p.kh; ++kh)
            for (int64_t kw = 0; kw < p.kw; ++kw) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh;
              const int64_t iw = ow * p.stride_w - p.pad_w + kw;
              if (ih >= 0 && ih < IH && iw >= 0 && iw < IW)
                dx[size_t(((n * C + c) * IH + ih) * IW + iw)] +=
                    double(dy.at({n, c, oh, ow})) / double(p.kh * p.kw);
            }
  Tensor t(x_shape);
  for (size_t i = 0; i < dx.size(); ++i) t.data()[i] = float(dx[i]);
  return t;
}

}  // namespace qkv
