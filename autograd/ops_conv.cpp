// conv2d, max_pool2d and avg_pool2d as single ops over the engine kernels
// (engine/kernels/conv.h). conv2d's backward keeps x and w (not the im2col
// buffer: it is rebuilt per batch of images); max_pool2d keeps the argmax indices;
// avg_pool2d keeps only the input shape. The adaptive and channel pools run
// engine/kernels/pool.h; their max variants keep the argmax. CBAM's fused
// gates run engine/kernels/gate.h and keep x and the gates.
#include "autograd/ops.h"
#include "engine/kernels/conv.h"
#include "engine/kernels/gate.h"
#include "engine/kernels/pool.h"

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

// x: [N,C,IH,IW] -> [N,C,OH,OW]
Var adaptive_avg_pool2d(const Var& x, int64_t OH, int64_t OW) {
  check(x.defined(), "adaptive_avg_pool2d: undefined input");
  Tensor y = adaptive_avg_pool2d_forward(x.value(), OH, OW);
  return record("adaptive_avg_pool2d", y, {x},
                [xs = x.shape()](const Tensor& dy, const std::vector<bool>&) {
                  return std::vector<Tensor>{adaptive_avg_pool2d_backward(dy, xs)};
                });
}

// x: [N,C,IH,IW] -> [N,C,OH,OW]
Var adaptive_max_pool2d(const Var& x, int64_t OH, int64_t OW) {
  check(x.defined(), "adaptive_max_pool2d: undefined input");
  AdaptiveMaxResult r = adaptive_max_pool2d_forward(x.value(), OH, OW);
  return record("adaptive_max_pool2d", r.y, {x},
                [idx = r.idx, xs = x.shape()](const Tensor& dy, const std::vector<bool>&) {
                  return std::vector<Tensor>{max_pool2d_backward(dy, idx, xs)};
                });
}

namespace {
// x: [N,C,IH,IW] -> [N,K,IH,IW] with K = 1 (mean or max) or 2 ([mean, max]).
// The argmax lives in an int tensor laid out like y (plane k of image n at
// (n*K + k)*IHW), so forward and backward share one per-image stride K*IHW.
Var channel_pool_op(const char* op, const Var& x, bool want_mean, bool want_max) {
  check(x.defined(), op, ": undefined input");
  check(x.dim() == 4, op, ": expected x of shape [N,C,IH,IW], got ", x.shape());
  check(x.size(1) >= 1, op, ": no channels in x ", x.shape());
  const int64_t N = x.size(0), C = x.size(1), IHW = x.size(2) * x.size(3);
  const int64_t K = int64_t(want_mean) + int64_t(want_max);
  const int64_t max_at = want_mean ? IHW : 0;  // offset of the max plane in an image
  Tensor y(Shape{N, K, x.size(2), x.size(3)});
  IntTensor arg = want_max ? IntTensor(y.shape()) : IntTensor();
  channel_pool_forward(x.value().data(), nullptr, N, C, IHW, want_mean ? y.data() : nullptr,
                       want_max ? y.data() + max_at : nullptr,
                       want_max ? arg.data() + max_at : nullptr, K * IHW);
  // y = [mean_c x, max_c x]:  dx = dmean / C + one-hot(argmax) * dmax
  return record(op, y, {x},
                [arg, want_mean, want_max, max_at, xs = x.shape(), K](const Tensor& dy,
                                                                      const std::vector<bool>&) {
                  const int64_t IHW = xs[2] * xs[3];
                  Tensor dx(xs);
                  channel_pool_backward(want_mean ? dy.data() : nullptr,
                                        want_max ? dy.data() + max_at : nullptr,
                                        want_max ? arg.data() + max_at : nullptr, xs[0], xs[1], IHW,
                                        K * IHW, dx.data());
                  return std::vector<Tensor>{dx};
                });
}
}  // namespace

Var channel_mean(const Var& x) { return channel_pool_op("channel_mean", x, true, false); }
Var channel_max(const Var& x) { return channel_pool_op("channel_max", x, false, true); }
Var channel_pool(const Var& x) { return channel_pool_op("channel_pool", x, true, true); }

namespace {
// x [N,C,IH,IW], s [N,C,1,1] (and m [N,1,IH,IW]) of one gate op, checked.
void check_gates(const char* op, const Var& x, const Var& s, const Var* m) {
  check(x.defined() && s.defined() && (!m || m->defined()), op, ": undefined input");
  check(x.dim() == 4 && x.size(1) >= 1, op, ": expected x of shape [N,C,IH,IW], got ", x.shape());
  const Shape want_s{x.size(0), x.size(1), 1, 1};
  check(s.shape() == want_s, op, ": channel gate has shape ", s.shape(), ", expected ", want_s);
  if (m) {
    const Shape want_m{x.size(0), 1, x.size(2), x.size(3)};
    check(m->shape() == want_m, op, ": spatial gate has shape ", m->shape(), ", expected ",
          want_m);
  }
}
}  // namespace

Var channel_pool_scaled(const Var& x, const Var& s) {
  check_gates("channel_pool_scaled", x, s, nullptr);
  const int64_t N = x.size(0), C = x.size(1), IHW = x.size(2) * x.size(3);
  Tensor y(Shape{N, 2, x.size(2), x.size(3)});
  // the argmax in the max plane of an int tensor laid out like y (plane 0 unused)
  IntTensor arg(y.shape());
  channel_pool_forward(x.value().data(), s.value().data(), N, C, IHW, y.data(), y.data() + IHW,
                       arg.data() + IHW, 2 * IHW);
  // y = [mean_c x*s, max_c x*s]; with e = dmean / C + one-hot(argmax) * dmax:
  //   dx = e * s, ds = sum over pixels of e * x
  return record("channel_pool_scaled", y, {x, s},
                [arg, X = x.value(), S = s.value()](const Tensor& dy,
                                                     const std::vector<bool>& needs) {
                  const int64_t N = X.size(0), C = X.size(1), IHW = X.size(2) * X.size(3);
                  Tensor dx = needs[0] ? Tensor(X.shape()) : Tensor();
                  Tensor ds = needs[1] ? Tensor(S.shape()) : Tensor();
                  scaled_channel_pool_backward(dy.data(), arg.data() + IHW, X.data(), S.data(), N, C,
                                               IHW, needs[0] ? dx.data() : nullptr,
                                               needs[1] ? ds.data() : nullptr);
                  return std::vector<Tensor>{dx, ds};
                });
}

Var gate(const Var& x, const Var& s, const Var& m) {
  check_gates("gate", x, s, &m);
  const int64_t N = x.size(0), C = x.size(1), IHW = x.size(2) * x.size(3);
  Tensor y(x.shape());
  gate_forward(x.value().data(), s.value().data(), m.value().data(), N, C, IHW, y.data());
  // y = x * s * m:  dx = g * s * m, ds = sum over pixels of g * x * m,
  //   dm = sum over channels of g * x * s
  return record("gate", y, {x, s, m},
                [X = x.value(), S = s.value(), M = m.value()](const Tensor& g,
                                                               const std::vector<bool>& needs) {
                  const int64_t N = X.size(0), C = X.size(1), IHW = X.size(2) * X.size(3);
                  Tensor dx = needs[0] ? Tensor(X.shape()) : Tensor();
                  Tensor ds = needs[1] ? Tensor(S.shape()) : Tensor();
                  Tensor dm = needs[2] ? Tensor(M.shape()) : Tensor();
                  gate_backward(g.data(), X.data(), S.data(), M.data(), N, C, IHW,
                                needs[0] ? dx.data() : nullptr, needs[1] ? ds.data() : nullptr,
                                needs[2] ? dm.data() : nullptr);
                  return std::vector<Tensor>{dx, ds, dm};
                });
}

}  // namespace qkv
