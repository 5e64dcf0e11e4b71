// Adaptive and channel pooling (see pool.h). Memory-bound: each kernel reads x
// once, SIMD along the contiguous IIH*IW axis, threaded over planes (adaptive) or
// over (image, pixel block) pairs (channel pooling).
#include "engine/kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/simd.h"
#include "engine/kernels/row_moments.h"
#include "engine/threads.h"

namespace qkv {

using simd::VF;
using simd::W;

// ---- adaptive pooling ----------------------------------------------------------------
void adaptive_pool2d_check(const Shape& x, int64_t OH, int64_t OW, const char* op) {
  check(x.size() == 4, op, ": expected x of shape [N,C,IH,W], got ", x);
  check(OH >= 1 && OW >= 1, op, ": output size must be >= 1, got ", OH, "x", OW);
  check(x[2] >= 1 && x[3] >= 1, op, ": empty input plane: x ", x);
}

namespace {

// Max of n >= 1 floats and the index of its first occurrence; NaN wins (first NaN).
std::pair<float, int64_t> argmax_simd(const float* p, int64_t n) {
  const float lowest = -std::numeric_limits<float>::infinity();
  VF m0(lowest), m1(lowest), bad(0.f);  // bad: sum of (v - v), NaN if a NaN (or inf) was seen
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const VF a = VF::load_unaligned(p + i), b = VF::load_unaligned(p + i + W);
    m0 = xsimd::max(m0, a), m1 = xsimd::max(m1, b);
    bad += (a - a) + (b - b);
  }
  for (; i + W <= n; i += W) {
    const VF a = VF::load_unaligned(p + i);
    m0 = xsimd::max(m0, a), bad += a - a;
  }
  float m = simd::hmax(xsimd::max(m0, m1));
  bool maybe_nan = std::isnan(simd::hsum(bad));
  for (; i < n; ++i) m = p[i] > m ? p[i] : m, maybe_nan |= std::isnan(p[i]);
  if (maybe_nan)
    for (int64_t k = 0; k < n; ++k)
      if (std::isnan(p[k])) return {p[k], k};
  for (int64_t k = 0; k < n; ++k)  // the first occurrence (usually found early)
    if (p[k] == m) return {m, k};
  return {m, 0};
}

}  // namespace

Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t OH, int64_t OW) {
  adaptive_pool2d_check(x.shape(), OH, OW, "adaptive_avg_pool2d");
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  Tensor y(Shape{N, C, OH, OW});
  const float* xp = x.data();
  float* yp = y.data();
  const bool global = OH == 1 && OW == 1;
  parallel_for(N * C, x.numel(), [&](int64_t pl) {
    const float* src = xp + pl * IH * IW;
    if (global) {
      yp[pl] = rows::sum(src, IH * IW) / float(IH * IW);
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t hs = adaptive_start(oh, IH, OH), he = adaptive_end(oh, IH, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t ws = adaptive_start(ow, IW, OW), we = adaptive_end(ow, IW, OW);
        float acc = 0.f;
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = ws; iw < we; ++iw) acc += src[ih * IW + iw];
        yp[(pl * OH + oh) * OW + ow] = acc / float((he - hs) * (we - ws));
      }
    }
  });
  return y;
}

Tensor adaptive_avg_pool2d_forward_ref(const Tensor& x, int64_t OH, int64_t OW) {
  adaptive_pool2d_check(x.shape(), OH, OW, "adaptive_avg_pool2d");
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  Tensor y(Shape{N, C, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t hs = adaptive_start(oh, IH, OH), he = adaptive_end(oh, IH, OH);
          const int64_t ws = adaptive_start(ow, IW, OW), we = adaptive_end(ow, IW, OW);
          double acc = 0;
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) acc += x.at({n, c, ih, iw});
          y.at({n, c, oh, ow}) = float(acc / double((he - hs) * (we - ws)));
        }
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape) {
  check(dy.dim() == 4 && x_shape.size() == 4 && dy.size(0) == x_shape[0] &&
            dy.size(1) == x_shape[1],
        "adaptive_avg_pool2d_backward: dy ", dy.shape(), " does not match x ", x_shape);
  const int64_t IH = x_shape[2], IW = x_shape[3], OH = dy.size(2), OW = dy.size(3);
  Tensor dx = zeros(x_shape);
  const float* d = dy.data();
  float* o = dx.data();
  parallel_for(x_shape[0] * x_shape[1], dx.numel(), [&](int64_t pl) {
    float* dst = o + pl * IH * IW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t hs = adaptive_start(oh, IH, OH), he = adaptive_end(oh, IH, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t ws = adaptive_start(ow, IW, OW), we = adaptive_end(ow, IW, OW);
        const float g = d[(pl * OH + oh) * OW + ow] / float((he - hs) * (we - ws));
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = ws; iw < we; ++iw) dst[ih * IW + iw] += g;
      }
    }
  });
  return dx;
}

AdaptiveMaxResult adaptive_max_pool2d_forward(const Tensor& x, int64_t OH, int64_t OW) {
  adaptive_pool2d_check(x.shape(), OH, OW, "adaptive_max_pool2d");
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  AdaptiveMaxResult r{Tensor(Shape{N, C, OH, OW}), IntTensor(Shape{N, C, OH, OW})};
  const float* xp = x.data();
  float* yp = r.y.data();
  int32_t* ip = r.idx.data();
  const bool global = OH == 1 && OW == 1;
  parallel_for(N * C, x.numel(), [&](int64_t pl) {
    const float* src = xp + pl * IH * IW;
    if (global) {
      const auto [m, k] = argmax_simd(src, IH * IW);
      yp[pl] = m;
      ip[pl] = int32_t(k);
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t hs = adaptive_start(oh, IH, OH), he = adaptive_end(oh, IH, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t ws = adaptive_start(ow, IW, OW), we = adaptive_end(ow, IW, OW);
        float best = src[hs * IW + ws];
        int64_t bi = hs * IW + ws;
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = ws; iw < we; ++iw) {
            const float v = src[ih * IW + iw];
            if (v > best || (std::isnan(v) && !std::isnan(best))) best = v, bi = ih * IW + iw;
          }
        yp[(pl * OH + oh) * OW + ow] = best;
        ip[(pl * OH + oh) * OW + ow] = int32_t(bi);
      }
    }
  });
  return r;
}

AdaptiveMaxResult adaptive_max_pool2d_forward_ref(const Tensor& x, int64_t OH, int64_t OW) {
  adaptive_pool2d_check(x.shape(), OH, OW, "adaptive_max_pool2d");
  const int64_t N = x.size(0), C = x.size(1), IH = x.size(2), IW = x.size(3);
  AdaptiveMaxResult r{Tensor(Shape{N, C, OH, OW}), IntTensor(Shape{N, C, OH, OW})};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t hs = adaptive_start(oh, IH, OH), he = adaptive_end(oh, IH, OH);
          const int64_t ws = adaptive_start(ow, IW, OW), we = adaptive_end(ow, IW, OW);
          double best = 0;
          int64_t bi = -1;
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) {
              const double v = x.at({n, c, ih, iw});
              if (bi < 0 || v > best) best = v, bi = ih * IW + iw;
            }
          r.y.at({n, c, oh, ow}) = float(best);
          r.idx.at({n, c, oh, ow}) = int32_t(bi);
        }
  return r;
}

// ---- channel pooling ------------------------------------------------------------------
namespace {
// Pixel blocks of 1024 floats (64 vectors): each (image, block) task reads C
// rows of 4 KiB, enough to stream and small enough to balance 2 threads.
constexpr int64_t kPixBlock = 1024;

template <class Fn>
void for_pixel_blocks(int64_t B, int64_t C, int64_t IHW, Fn fn) {
  const int64_t nb = (IHW + kPixBlock - 1) / kPixBlock;
  const int nt = num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(B * C * IHW))
  for (int64_t t = 0; t < B * nb; ++t) {
    const int64_t b = t / nb, p0 = (t % nb) * kPixBlock;
    fn(b, p0, std::min(p0 + kPixBlock, IHW));
  }
}
}  // namespace

void channel_pool_forward(const float* x, const float* s, int64_t B, int64_t C, int64_t IHW,
                          float* mean, float* mx, int32_t* arg, int64_t ostride) {
  const float inv = 1.f / float(C);
  for_pixel_blocks(B, C, IHW, [&](int64_t b, int64_t p0, int64_t p1) {
    const float* xb = x + b * C * IHW;
    // channel c's scale (times 1 is exact: unscaled pooling is unchanged)
    auto sc = [&](int64_t c) { return s ? s[b * C + c] : 1.f; };
    int64_t p = p0;
    // One vector of pixels at a time: sum, max and the (float) channel of the
    // first max over all C rows. Strict > keeps the first max.
    for (; p + W <= p1; p += W) {
      VF m = VF::load_unaligned(xb + p) * VF(sc(0)), sum = m, a(0.f);
      for (int64_t c = 1; c < C; ++c) {
        const VF v = VF::load_unaligned(xb + c * IHW + p) * VF(sc(c));
        sum += v;
        const auto gt = v > m;
        a = xsimd::select(gt, VF(float(c)), a);
        m = xsimd::select(gt, v, m);
      }
      if (mean) (sum * VF(inv)).store_unaligned(mean + b * ostride + p);
      if (mx) {
        m.store_unaligned(mx + b * ostride + p);
        xsimd::to_int(a).store_unaligned(arg + b * ostride + p);
      }
    }
    for (; p < p1; ++p) {
      float m = xb[p] * sc(0), sum = m;
      int32_t a = 0;
      for (int64_t c = 1; c < C; ++c) {
        const float v = xb[c * IHW + p] * sc(c);
        sum += v;
        if (v > m) m = v, a = int32_t(c);
      }
      if (mean) mean[b * ostride + p] = sum * inv;
      if (mx) mx[b * ostride + p] = m, arg[b * ostride + p] = a;
    }
  });
}

void channel_pool_forward_ref(const float* x, const float* s, int64_t B, int64_t C, int64_t IHW,
                              float* mean, float* mx, int32_t* arg, int64_t ostride) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < IHW; ++p) {
      double sum = 0;
      float m = 0.f;
      int32_t a = 0;
      for (int64_t c = 0; c < C; ++c) {
        const float v = x[(b * C + c) * IHW + p] * (s ? s[b * C + c] : 1.f);
        sum += v;
        if (c == 0 || v > m) m = v, a = int32_t(c);
      }
      if (mean) mean[b * ostride + p] = float(sum / double(C));
      if (mx) mx[b * ostride + p] = m, arg[b * ostride + p] = a;
    }
}

void channel_pool_backward(const float* dmean, const float* dmax, const int32_t* arg, int64_t B,
                           int64_t C, int64_t IHW, int64_t istride, float* dx) {
  const float inv = 1.f / float(C);
  for_pixel_blocks(B, C, IHW, [&](int64_t b, int64_t p0, int64_t p1) {
    float* db = dx + b * C * IHW;
    const float* gm = dmean ? dmean + b * istride : nullptr;
    for (int64_t c = 0; c < C; ++c) {
      float* row = db + c * IHW;
      if (gm) {
        int64_t p = p0;
        for (; p + W <= p1; p += W) (VF::load_unaligned(gm + p) * VF(inv)).store_unaligned(row + p);
        for (; p < p1; ++p) row[p] = gm[p] * inv;
      } else {
        std::fill(row + p0, row + p1, 0.f);
      }
    }
    if (dmax)
      for (int64_t p = p0; p < p1; ++p)
        db[int64_t(arg[b * istride + p]) * IHW + p] += dmax[b * istride + p];
  });
}

}  // namespace qkv
