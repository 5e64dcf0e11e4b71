// conv2d, max_pool2d and avg_pool2d as single ops over the engine kernels
// (engine/kernels/conv.h). conv2d's backward keeps x and w (not the im2col
// buffer: it is rebuilt per image); max_pool2d keeps the argmax indices;
// avg_pool2d keeps only the input shape.
#include "autograd/ops.h"
#include "engine/kernels/conv.h"

namespace qkv {

namespace {
Conv2dSpec to_spec(const Conv2dParams& p) {
  return {p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w, p.groups};
}
Pool2dSpec to_spec(const Pool2dParams& p) {
  return {p.kh, p.kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w};
}
}  // namespace

Var conv2d(const Var& x, const Var& w, const Var& b, const Conv2dParams& p) {
  check(x.defined() && w.defined(), "conv2d: undefined input or weight");
  const Conv2dSpec s = to_spec(p);
  Tensor y = conv2d_forward(x.value(), w.value(), b.defined() ? b.value() : Tensor(), s);
  std::vector<Var> inputs{x, w};
  if (b.defined()) inputs.push_back(b);
  return record("conv2d", y, inputs,
                [xv = x.value(), wv = w.value(), s](const Tensor& dy,
                                                    const std::vector<bool>& needs) {
                  const bool nb = needs.size() > 2 && needs[2];
                  Conv2dGrads g = conv2d_backward(xv, wv, dy, s, needs[0], needs[1], nb);
                  std::vector<Tensor> gs{g.dx, g.dw};
                  if (needs.size() > 2) gs.push_back(g.db);
                  return gs;
                });
}

Var max_pool2d(const Var& x, const Pool2dParams& p) {
  check(x.defined(), "max_pool2d: undefined input");
  MaxPool2dResult r = max_pool2d_forward(x.value(), to_spec(p));
  return record("max_pool2d", r.y, {x},
                [idx = r.idx, xs = x.shape()](const Tensor& dy, const std::vector<bool>&) {
                  return std::vector<Tensor>{max_pool2d_backward(dy, idx, xs)};
                });
}

Var avg_pool2d(const Var& x, const Pool2dParams& p) {
  check(x.defined(), "avg_pool2d: undefined input");
  const Pool2dSpec s = to_spec(p);
  Tensor y = avg_pool2d_forward(x.value(), s);
  return record("avg_pool2d", y, {x},
                [xs = x.shape(), s](const Tensor& dy, const std::vector<bool>&) {
                  return std::vector<Tensor>{avg_pool2d_backward(dy, xs, s)};
                });
}

}  // namespace qkv
