// CBAM's attention gates, fused: for x [B,C,IH,IW] (HW = IH*IW pixels per plane),
// a channel gate s [B,C] and a spatial gate m [B,HW].
//
// CBAM computes y = x * s, pools y over channels for the spatial branch, and
// returns y * m. As broadcast multiplies, channel pooling and their backward
// (a product tensor per broadcast gradient, then a reduction; a full gradient
// tensor per op, then an add) that is about 30 passes over a [B,C,IH,IW]
// tensor per training step; these kernels never materialise y, and each
// backward computes the full-size and the reduced gradients in one pass.
// (The forward pooling of x*s is pool.h's channel_pool_forward with a scale.)
// Threaded over images (each image's reductions stay on one thread, so the
// bits do not depend on the thread count). Each has a plain-loop *_ref oracle.
#pragma once
#include <cstdint>

namespace qkv {

// The backward of pooling x*s over channels: out [B,2,HW] = [mean, max] over
// c of x*s, which pool.h's channel_pool_forward(x, s, ..., ostride = 2*HW)
// computes, its argmax arg with the same per-image stride 2*HW (arg[b*2*HW + p]:
// the max plane of an int tensor laid out like out). With
// e[b,c,p] = dout[b,0,p] / C + (arg[b,p] == c ? dout[b,1,p] : 0):
// dx = e * s, ds[b,c] = sum_p e * x. dx or ds may be null (not needed).
void scaled_channel_pool_backward(const float* dout, const int32_t* arg, const float* x,
                                  const float* s, int64_t B, int64_t C, int64_t HW, float* dx,
                                  float* ds);
void scaled_channel_pool_backward_ref(const float* dout, const int32_t* arg, const float* x,
                                      const float* s, int64_t B, int64_t C, int64_t HW, float* dx,
                                      float* ds);

// y = x * s[b,c] * m[b,p]
void gate_forward(const float* x, const float* s, const float* m, int64_t B, int64_t C,
                  int64_t HW, float* y);
void gate_forward_ref(const float* x, const float* s, const float* m, int64_t B, int64_t C,
                      int64_t HW, float* y);
// dx = g * s * m, ds[b,c] = sum_p g * x * m, dm[b,p] = sum_c g * x * s; any may be null.
void gate_backward(const float* g, const float* x, const float* s, const float* m, int64_t B,
                   int64_t C, int64_t HW, float* dx, float* ds, float* dm);
void gate_backward_ref(const float* g, const float* x, const float* s, const float* m, int64_t B,
                       int64_t C, int64_t HW, float* dx, float* ds, float* dm);

}  // namespace qkv
