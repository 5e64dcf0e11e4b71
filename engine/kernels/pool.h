// Pooling that CBAM and classifier heads need beyond the windowed pools of
// conv.h, over NCHW float tensors:
//   adaptive average / max pooling to [OH,OW] with PyTorch's window formula
//   (start = floor(o*I/O), end = ceil((o+1)*I/O); windows may overlap and
//   differ in size), with a one-pass SIMD path for the global (1x1) case;
//   channel pooling: mean and max over C per pixel ([B,C,IH,W] -> [B,1,IH,W]),
//   vectorised along IIH*IW.
// Max variants keep the argmax for the backward; ties go to the first maximum
// (window order / lowest channel). Each kernel has a plain-loop *_ref oracle.
#pragma once
#include <utility>

#include "engine/tensor.h"

namespace qkv {

// ---- adaptive pooling ----------------------------------------------------------------
// Validates x: [N,C,IH,W] and the output size (>= 1 each, and <= the input size);
// `op` names the caller in messages.
void adaptive_pool2d_check(const Shape& x, int64_t OH, int64_t OW, const char* op);
// PyTorch's window [start, end) of output index o for in -> out.
inline int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
inline int64_t adaptive_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

// x: [N,C,IH,W] -> [N,C,OH,OW]
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t OH, int64_t OW);
Tensor adaptive_avg_pool2d_forward_ref(const Tensor& x, int64_t OH, int64_t OW);
// dy: [N,C,OH,OW] -> dx: x_shape
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);

struct AdaptiveMaxResult {
  Tensor y;       // [N,C,OH,OW]
  IntTensor idx;  // [N,C,OH,OW]: argmax as ih*IW + iw inside its (n,c) plane
};
AdaptiveMaxResult adaptive_max_pool2d_forward(const Tensor& x, int64_t OH, int64_t OW);
AdaptiveMaxResult adaptive_max_pool2d_forward_ref(const Tensor& x, int64_t OH, int64_t OW);
// The scatter of conv.h's max_pool2d_backward (same index convention).

// ---- channel pooling ------------------------------------------------------------------
// x: [B,C,IH,W] -> mean [B,1,IH,W] and max [B,1,IH,W] with arg [B,1,IH,W] (channel
// index of the first max) of v = x * s[b,c], where s [B,C] is a per-channel
// scale (null: 1, v = x; CBAM pools x times its channel gate this way without
// writing the product). Outputs are written with a per-image stride `ostride`
// (IIH*IW for separate tensors, 2*IIH*IW to fill the two planes of a [B,2,IH,W]
// tensor); mean / mx+arg may be null to skip them.
void channel_pool_forward(const float* x, const float* s, int64_t B, int64_t C, int64_t IHW,
                          float* mean, float* mx, int32_t* arg, int64_t ostride);
void channel_pool_forward_ref(const float* x, const float* s, int64_t B, int64_t C, int64_t IHW,
                              float* mean, float* mx, int32_t* arg, int64_t ostride);
// dx[b,c,p] = dmean[b,p] / C + (arg[b,p] == c ? dmax[b,p] : 0), written whole
// (either upstream may be null: zero). Upstreams use the per-image stride istride.
void channel_pool_backward(const float* dmean, const float* dmax, const int32_t* arg, int64_t B,
                           int64_t C, int64_t IHW, int64_t istride, float* dx);

}  // namespace qkv
