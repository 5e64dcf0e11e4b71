// Losses: cross_entropy (fused log-softmax + NLL + label smoothing), nll_loss,
// mse_loss and bce_with_logits (stable form), each with mean/sum/none.
// Definitions follow torch.nn.functional: ignored targets contribute 0 and are
// not counted by mean (all ignored: NaN, as torch); label smoothing mixes
// (1 - ls) one-hot with ls / C. The class axis is the last one ([..., C] with
// target [...]), not torch's axis 1 for rank > 2.
// Not here: class weights, soft (probability) targets, other losses.
#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/ops.h"
#include "engine/kernels/loss.h"
#include "engine/kernels/reduce.h"
#include "engine/kernels/softmax.h"

namespace qkv {
namespace {

// "[i]" for rank 1, "[i,j]" for higher ranks: the position of flat index k.
std::string position(const Shape& s, int64_t k) {
  Shape idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = s[d] ? k % s[d] : 0;
    k = s[d] ? k / s[d] : 0;
  }
  return shape_str(idx);
}

// input: [..., C], target: [...] with ids in [0, C) or ignore_index.
// Returns the number of targets that are not ignored.
int64_t check_targets(const char* op, const Shape& in, const IntTensor& target,
                      int64_t ignore_index) {
  check(target.defined(), op, ": undefined target");
  check(!in.empty(), op, ": expected input of shape [..., C], got shape []");
  const Shape lead(in.begin(), in.end() - 1);
  check(target.shape() == lead, op, ": target has shape ", target.shape(), ", expected ", lead,
        " (input ", in, " without its class axis)");
  const int64_t C = in.back();
  int64_t count = 0;
  const int32_t* t = target.data();
  for (int64_t i = 0; i < target.numel(); ++i) {
    if (t[i] == ignore_index) continue;
    if (t[i] < 0 || t[i] >= C)
      fail(op, ": target ", t[i], " at ", position(target.shape(), i), " out of range [0,", C,
           ") and not ignore_index (", ignore_index, ")");
    ++count;
  }
  return count;
}

// Per-element losses [shape] -> the reduced output.
Tensor reduce_loss(Tensor per_elem, Reduction red, int64_t count) {
  if (red == Reduction::none) return per_elem;
  const float s = sum_all(per_elem);
  // mean over nothing: 0/0 = NaN, as torch.
  return Tensor::scalar(red == Reduction::sum ? s : s / float(count));
}

// The upstream per element, as a pointer (none) or a scale (sum, mean).
struct Upstream {
  const float* per_elem;
  float scale;
};
Upstream upstream_of(const Tensor& g, Reduction red, int64_t count) {
  if (red == Reduction::none) return {g.data(), 1.f};
  const float s = g.item();
  if (red == Reduction::sum) return {nullptr, s};
  return {nullptr, count ? s / float(count) : 0.f};
}

}  // namespace

// ---- cross_entropy --------------------------------------------------------------------

// logits: [..., C], target: [...] -> [] (mean, sum) or [...] (none)
Var cross_entropy(const Var& logits, const IntTensor& target, int64_t ignore_index,
                  float label_smoothing, Reduction reduction) {
  check(logits.defined(), "cross_entropy: undefined logits");
  check(label_smoothing >= 0.f && label_smoothing < 1.f,
        "cross_entropy: label_smoothing must be in [0, 1), got ", label_smoothing);
  const int64_t count = check_targets("cross_entropy", logits.shape(), target, ignore_index);
  const int64_t C = logits.size(-1), rows = target.numel();

  Tensor loss(target.shape()), mx(Shape{rows}), lsum(Shape{rows});
  const Tensor& x = logits.value();
  cross_entropy_forward(x.data(), target.data(), rows, C, ignore_index, label_smoothing,
                        loss.data(), mx.data(), lsum.data());
  Tensor out = reduce_loss(loss, reduction, count);
  // loss_r = (1-ls) * -logp[r,t] + ls * mean_c(-logp[r,c]), logp = log_softmax(x):
  //   dx[r] = g_r * (softmax(x[r]) - ((1-ls) one_hot(t) + ls/C))          [..., C]
  return record("cross_entropy", out, {logits},
                [x, target, mx, lsum, ignore_index, label_smoothing, reduction, count](
                    const Tensor& g, const std::vector<bool>&) {
                  const int64_t C = x.size(-1), rows = target.numel();
                  const Upstream up = upstream_of(g, reduction, count);
                  Tensor dx(x.shape());
                  cross_entropy_backward(x.data(), target.data(), mx.data(), lsum.data(),
                                         up.per_elem, up.scale, rows, C, ignore_index,
                                         label_smoothing, dx.data());
                  return std::vector<Tensor>{dx};
                });
}

// ---- nll_loss -------------------------------------------------------------------------

// logp: [..., C], target: [...] -> [] or [...]
Var nll_loss(const Var& logp, const IntTensor& target, int64_t ignore_index, Reduction reduction) {
  check(logp.defined(), "nll_loss: undefined input");
  const int64_t count = check_targets("nll_loss", logp.shape(), target, ignore_index);
  const int64_t C = logp.size(-1), rows = target.numel();
  Tensor loss(target.shape());
  const float* lp = logp.value().data();
  const int32_t* t = target.data();
  for (int64_t r = 0; r < rows; ++r)
    loss.data()[r] = t[r] == ignore_index ? 0.f : -lp[r * C + t[r]];
  Tensor out = reduce_loss(loss, reduction, count);
  // loss_r = -logp[r, t_r]:  dlogp[r, t_r] = -g_r, 0 elsewhere
  return record("nll_loss", out, {logp},
                [shape = logp.shape(), target, ignore_index, reduction, count](
                    const Tensor& g, const std::vector<bool>&) {
                  const Upstream up = upstream_of(g, reduction, count);
                  Tensor d = Tensor::zeros(shape);
                  const int64_t C = shape.back();
                  const int32_t* t = target.data();
                  for (int64_t r = 0; r < target.numel(); ++r)
                    if (t[r] != ignore_index)
                      d.data()[r * C + t[r]] = -(up.per_elem ? up.per_elem[r] : up.scale);
                  return std::vector<Tensor>{d};
                });
}

// ---- mse_loss -------------------------------------------------------------------------

// pred, target: [...] (same shape) -> [] or [...]
Var mse_loss(const Var& pred, const Var& target, Reduction reduction) {
  check(pred.defined() && target.defined(), "mse_loss: undefined input");
  check(pred.shape() == target.shape(), "mse_loss: pred has shape ", pred.shape(),
        ", target has shape ", target.shape(), " (they must match)");
  const int64_t n = pred.numel();
  Tensor d(pred.shape()), sq(pred.shape());
  mse_forward(pred.value().data(), target.value().data(), d.data(), sq.data(), n);
  Tensor out = reduce_loss(sq, reduction, n);
  // loss_i = (p_i - t_i)^2:  dp_i = 2 (p_i - t_i) g_i,  dt_i = -dp_i
  return record("mse_loss", out, {pred, target},
                [d, reduction, n](const Tensor& g, const std::vector<bool>& needs) {
                  const Upstream up = upstream_of(g, reduction, n);
                  Tensor dp(d.shape());
                  mse_backward(d.data(), up.per_elem, up.scale, dp.data(), n);
                  std::vector<Tensor> gs(2);
                  if (needs[1]) gs[1] = unary(UnaryOp::neg, dp);
                  if (needs[0]) gs[0] = dp;
                  return gs;
                });
}

// ---- bce_with_logits ----------------------------------------------------------------------

// logits, target: [...] (same shape; target in [0, 1]) -> [] or [...]
Var bce_with_logits(const Var& logits, const Var& target, Reduction reduction) {
  check(logits.defined() && target.defined(), "bce_with_logits: undefined input");
  check(logits.shape() == target.shape(), "bce_with_logits: logits have shape ", logits.shape(),
        ", target has shape ", target.shape(), " (they must match)");
  const int64_t n = logits.numel();
  const Tensor &xv = logits.value(), &yv = target.value();
  Tensor loss(xv.shape());
  bce_with_logits_forward(xv.data(), yv.data(), loss.data(), n);
  Tensor out = reduce_loss(loss, reduction, n);
  //   dx_i = (sigmoid(x_i) - y_i) g_i,   dy_i = -x_i g_i
  return record("bce_with_logits", out, {logits, target},
                [xv, yv, reduction, n](const Tensor& g, const std::vector<bool>& needs) {
                  const Upstream up = upstream_of(g, reduction, n);
                  std::vector<Tensor> gs(2);
                  if (needs[0]) gs[0] = Tensor(xv.shape());
                  if (needs[1]) gs[1] = Tensor(yv.shape());
                  bce_with_logits_backward(xv.data(), yv.data(), up.per_elem, up.scale,
                                           needs[0] ? gs[0].data() : nullptr,
                                           needs[1] ? gs[1].data() : nullptr, n);
                  return gs;
                });
}

}  // namespace qkv
