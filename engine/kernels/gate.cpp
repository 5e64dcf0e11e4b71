// CBAM's fused gates (see gate.h). Per image: plane by plane, vectorised
// along the pixels; per-pixel state (the argmax as floats, or the spatial
// gate's gradient) is one image's HW floats, resident in L1/L2 while the
// image's C planes stream past.
#include "engine/kernels/gate.h"

#include <algorithm>
#include <vector>

#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
namespace {
using simd::VF;
using simd::W;
}  // namespace

void scaled_channel_pool_backward(const float* dout, const int32_t* arg, const float* x,
                                  const float* s, int64_t B, int64_t C, int64_t HW, float* dx,
                                  float* ds) {
  const float inv = 1.f / float(C);
  parallel_for(B, B * C * HW, [&](int64_t b) {
    const float* dmean = dout + b * 2 * HW;
    const float* dmax = dmean + HW;
    const int32_t* ab = arg + b * 2 * HW;
    std::vector<float> af(static_cast<size_t>(HW));  // arg as floats, for vector compares
    for (int64_t p = 0; p < HW; ++p) af[size_t(p)] = float(ab[p]);
    for (int64_t c = 0; c < C; ++c) {
      const float* xr = x + (b * C + c) * HW;
      float* dr = dx ? dx + (b * C + c) * HW : nullptr;
      const float sc = s[b * C + c];
      VF acc(0.f);
      int64_t p = 0;
      for (; p + W <= HW; p += W) {
        const VF hit = xsimd::select(VF::load_unaligned(af.data() + p) == VF(float(c)),
                                     VF::load_unaligned(dmax + p), VF(0.f));
        const VF e = xsimd::fma(VF::load_unaligned(dmean + p), VF(inv), hit);
        if (dr) (e * VF(sc)).store_unaligned(dr + p);
        acc = xsimd::fma(e, VF::load_unaligned(xr + p), acc);
      }
      float tail = 0.f;
      for (; p < HW; ++p) {
        const float e = dmean[p] * inv + (ab[p] == c ? dmax[p] : 0.f);
        if (dr) dr[p] = e * sc;
        tail += e * xr[p];
      }
      if (ds) ds[b * C + c] = simd::hsum(acc) + tail;
    }
  });
}

void scaled_channel_pool_backward_ref(const float* dout, const int32_t* arg, const float* x,
                                      const float* s, int64_t B, int64_t C, int64_t HW, float* dx,
                                      float* ds) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double acc = 0;
      for (int64_t p = 0; p < HW; ++p) {
        const double e = double(dout[b * 2 * HW + p]) / double(C) +
                         (arg[b * 2 * HW + p] == c ? double(dout[b * 2 * HW + HW + p]) : 0.0);
        const int64_t i = (b * C + c) * HW + p;
        if (dx) dx[i] = float(e * s[b * C + c]);
        acc += e * x[i];
      }
      if (ds) ds[b * C + c] = float(acc);
    }
}

void gate_forward(const float* x, const float* s, const float* m, int64_t B, int64_t C,
                  int64_t HW, float* y) {
  parallel_for(B, B * C * HW, [&](int64_t b) {
    const float* mb = m + b * HW;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t o = (b * C + c) * HW;
      const float sc = s[b * C + c];
      int64_t p = 0;
      for (; p + W <= HW; p += W)
        (VF::load_unaligned(x + o + p) * VF::load_unaligned(mb + p) * VF(sc))
            .store_unaligned(y + o + p);
      for (; p < HW; ++p) y[o + p] = x[o + p] * mb[p] * sc;
    }
  });
}

void gate_forward_ref(const float* x, const float* s, const float* m, int64_t B, int64_t C,
                      int64_t HW, float* y) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) {
        const int64_t i = (b * C + c) * HW + p;
        y[i] = float(double(x[i]) * s[b * C + c] * m[b * HW + p]);
      }
}

void gate_backward(const float* g, const float* x, const float* s, const float* m, int64_t B,
                   int64_t C, int64_t HW, float* dx, float* ds, float* dm) {
  parallel_for(B, B * C * HW, [&](int64_t b) {
    const float* mb = m + b * HW;
    float* dmb = dm ? dm + b * HW : nullptr;
    if (dmb) std::fill(dmb, dmb + HW, 0.f);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t o = (b * C + c) * HW;
      const float sc = s[b * C + c];
      VF acc(0.f);
      float tail = 0.f;
      int64_t p = 0;
      for (; p + W <= HW; p += W) {
        const VF gv = VF::load_unaligned(g + o + p), mv = VF::load_unaligned(mb + p);
        if (dx) (gv * mv * VF(sc)).store_unaligned(dx + o + p);
        const VF gx = gv * VF::load_unaligned(x + o + p);
        acc = xsimd::fma(gx, mv, acc);
        if (dmb) xsimd::fma(gx, VF(sc), VF::load_unaligned(dmb + p)).store_unaligned(dmb + p);
      }
      for (; p < HW; ++p) {
        if (dx) dx[o + p] = g[o + p] * mb[p] * sc;
        const float gx = g[o + p] * x[o + p];
        tail += gx * mb[p];
        if (dmb) dmb[p] += gx * sc;
      }
      if (ds) ds[b * C + c] = simd::hsum(acc) + tail;
    }
  });
}

void gate_backward_ref(const float* g, const float* x, const float* s, const float* m, int64_t B,
                       int64_t C, int64_t HW, float* dx, float* ds, float* dm) {
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      double acc = 0;
      for (int64_t p = 0; p < HW; ++p) {
        const int64_t i = (b * C + c) * HW + p;
        if (dx) dx[i] = float(double(g[i]) * m[b * HW + p] * s[b * C + c]);
        acc += double(g[i]) * x[i] * m[b * HW + p];
      }
      if (ds) ds[b * C + c] = float(acc);
    }
    if (dm)
      for (int64_t p = 0; p < HW; ++p) {
        double acc = 0;
        for (int64_t c = 0; c < C; ++c) {
          const int64_t i = (b * C + c) * HW + p;
          acc += double(g[i]) * x[i] * s[b * C + c];
        }
        dm[b * HW + p] = float(acc);
      }
  }
}

}  // namespace qkv
