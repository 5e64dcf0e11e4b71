// 2-D convolution and pooling over NCHW float tensors.
//
// Direct path when a group has at most 4 output channels (the GEMM would be a
// GEMV there): plain row loops over the kernel taps, vectorised along output
// rows, threaded over output planes (forward), input planes (dx) and weight
// entries (dw); no col buffer.
// conv2d_forward: per batch of images and group, im2col the batch side by side
// into col [Cg*KH*KW, images*OH*OW], one GEMM out[Og, images*OH*OW] =
// W_g[Og, Cg*KH*KW] * col, then out scattered into NCHW (+ bias); one image per
// GEMM writes NCHW in place, and a 1x1 / stride 1 / pad 0 convolution uses the
// image itself as col. conv2d_images_per_gemm sizes the batches (one GEMM per
// image of 14x14 ran at 81 GFLOP/s). Threaded over batches (the GEMM runs
// serial inside the region; a single batch gets the threads in its GEMM).
// conv2d_backward: dW^T = sum over batches of col dY_g^T (dY_g gathered to
// [Og, images*OH*OW]), accumulated over a fixed partition of the images (up to
// 8 blocks by N, each split into batches by geometry only) summed in block
// order, so the bits do not depend on the thread count. dX: for stride 1 and
// Og <= Cg, the forward conv of dY with the kernel flipped and transposed (pad
// dil*(K-1) - pad), batched like the forward; otherwise col2im(W_g^T dY_g) per
// batch.
// db = sum of dY over N, OH, OW.
// Pooling: max (argmax index kept for the backward; ties go to the first
// maximum in window order; padding never wins) and average
// (count_include_pad = true). No ceil_mode. Each kernel has a plain-loop
// *_ref oracle computing in double.
#pragma once
#include "engine/tensor.h"

namespace qkv {

struct Conv2dSpec {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};

// Everything the loops need, derived and validated from x, w (and b) shapes.
struct Conv2dGeom {
  int64_t N, C, IH, IW, O, KH, KW, OH, OW, G, Cg, Og;
  Conv2dSpec s;
};
// Throws qkv::Error naming `op` and the shapes: rank, channel/group mismatch,
// bias shape, non-positive stride/dilation/groups, negative padding, kernel
// larger than the padded input.
Conv2dGeom conv2d_geom(const Shape& x, const Shape& w, const Shape* b, const Conv2dSpec& s,
                       const char* op = "conv2d");

// Whether conv2d_forward/backward take the direct path (few output channels
// per group, e.g. CBAM's 7x7 2->1 conv) instead of im2col + GEMM.
bool conv2d_uses_direct(const Conv2dGeom& g);
// Images im2col'd side by side into one GEMM on the im2col path: enough for
// about 1024 columns, with the col buffer capped at 1 MiB; 1 for a pointwise
// conv (each image is its own col). Depends on the geometry only.
int64_t conv2d_images_per_gemm(const Conv2dGeom& g);

// x: [N,C,IH,IW], w: [O,C/groups,KH,KW], b: [O] or undefined -> [N,O,OH,OW]
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dSpec& s);
Tensor conv2d_forward_ref(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dSpec& s);

struct Conv2dGrads {
  Tensor dx, dw, db;  // undefined where not requested
};
Conv2dGrads conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                            const Conv2dSpec& s, bool need_dx, bool need_dw, bool need_db);
Conv2dGrads conv2d_backward_ref(const Tensor& x, const Tensor& w, const Tensor& dy,
                                const Conv2dSpec& s, bool need_dx, bool need_dw, bool need_db);

// ---- pooling ----------------------------------------------------------------------
struct Pool2dSpec {
  int64_t kh = 2, kw = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
};
// Validates x: [N,C,IH,IW] and the spec (positive kernel and stride, 0 <= pad <=
// kernel/2, kernel fits the padded input); returns {OH, OW}.
std::pair<int64_t, int64_t> pool2d_out_hw(const Shape& x, const Pool2dSpec& p, const char* op);

struct MaxPool2dResult {
  Tensor y;      // [N,C,OH,OW]
  IntTensor idx; // [N,C,OH,OW]: argmax as h*IW + w inside its (n,c) plane
};
MaxPool2dResult max_pool2d_forward(const Tensor& x, const Pool2dSpec& p);
MaxPool2dResult max_pool2d_forward_ref(const Tensor& x, const Pool2dSpec& p);
// dx[n,c] plane: dx[idx] += dy (scatter; overlapping windows accumulate).
Tensor max_pool2d_backward(const Tensor& dy, const IntTensor& idx, const Shape& x_shape);

Tensor avg_pool2d_forward(const Tensor& x, const Pool2dSpec& p);
Tensor avg_pool2d_forward_ref(const Tensor& x, const Pool2dSpec& p);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dSpec& p);
Tensor avg_pool2d_backward_ref(const Tensor& dy, const Shape& x_shape, const Pool2dSpec& p);

}  // namespace qkv
