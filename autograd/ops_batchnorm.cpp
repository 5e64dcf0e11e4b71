// batch_norm as one fused op over engine/kernels/batchnorm.h: training
// normalises with the batch statistics (and updates the running ones), eval
// with the running statistics. The backward keeps x, the per-channel mean and
// rstd used, and the weight; it differentiates through the batch statistics
// only in training.
#include <cmath>

#include "autograd/ops.h"
#include "engine/kernels/batchnorm.h"

namespace qkv {

// x: [N,C] or [N,C,*]; weight, bias: [C] or undefined -> x's shape
Var batch_norm(const Var& x, const Var& weight, const Var& bias, Tensor running_mean,
               Tensor running_var, bool training, float momentum, float eps) {
  check(x.defined(), "batch_norm: undefined input");
  check(x.dim() >= 2, "batch_norm: expected x of shape [N,C,...], got ", x.shape());
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(1, N * C);
  for (const auto& [t, name] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}})
    if (t->defined())
      check(t->shape() == Shape{C}, "batch_norm: ", name, " has shape ", t->shape(), ", expected [",
            C, "] (x ", x.shape(), ")");
  const bool have_running = running_mean.defined() && running_var.defined();
  check(running_mean.defined() == running_var.defined(),
        "batch_norm: running_mean and running_var must both be given or both omitted");
  if (have_running)
    check(running_mean.shape() == Shape{C} && running_var.shape() == Shape{C},
          "batch_norm: running stats have shapes ", running_mean.shape(), " and ",
          running_var.shape(), ", expected [", C, "] (x ", x.shape(), ")");
  check(training || have_running, "batch_norm: eval mode needs running_mean and running_var");
  check(!training || N * S > 1, "batch_norm: training needs more than one value per channel, got x ",
        x.shape());
  check(eps >= 0.f, "batch_norm: eps must be >= 0, got ", eps);

  const float* g = weight.defined() ? weight.value().data() : nullptr;
  const float* b = bias.defined() ? bias.value().data() : nullptr;
  Tensor y(x.shape()), mean(Shape{C}), rstd(Shape{C});
  if (training) {
    Tensor var_u(Shape{C});
    batchnorm_forward_train(x.value().data(), N, C, S, g, b, eps, y.data(), mean.data(),
                            rstd.data(), var_u.data());
    if (have_running) {
      float* rm = running_mean.data();
      float* rv = running_var.data();
      for (int64_t c = 0; c < C; ++c) {
        rm[c] = (1.f - momentum) * rm[c] + momentum * mean.data()[c];
        rv[c] = (1.f - momentum) * rv[c] + momentum * var_u.data()[c];
      }
    }
  } else {
    mean.copy_from(running_mean);
    for (int64_t c = 0; c < C; ++c)
      rstd.data()[c] = 1.f / std::sqrt(running_var.data()[c] + eps);
    batchnorm_forward_eval(x.value().data(), N, C, S, g, b, mean.data(), rstd.data(), y.data());
  }

  std::vector<Var> inputs{x};
  const int iw = weight.defined() ? int(inputs.size()) : -1;
  if (iw >= 0) inputs.push_back(weight);
  const int ib = bias.defined() ? int(inputs.size()) : -1;
  if (ib >= 0) inputs.push_back(bias);
  // y = (x - mean) * rstd * weight + bias (see batchnorm.h for the derivatives)
  return record("batch_norm", y, inputs,
                [xv = x.value(), mean, rstd, gt = weight.defined() ? weight.value() : Tensor(),
                 training, iw, ib](const Tensor& dy, const std::vector<bool>& needs) {
                  std::vector<Tensor> gs(needs.size());
                  const int64_t N = xv.size(0), C = xv.size(1), S = xv.numel() / (N * C);
                  if (needs[0]) gs[0] = Tensor(xv.shape());
                  if (iw >= 0 && needs[size_t(iw)]) gs[size_t(iw)] = Tensor(Shape{C});
                  if (ib >= 0 && needs[size_t(ib)]) gs[size_t(ib)] = Tensor(Shape{C});
                  auto ptr = [&](int k) {
                    return k >= 0 && gs[size_t(k)].defined() ? gs[size_t(k)].data() : nullptr;
                  };
                  batchnorm_backward(xv.data(), dy.data(), N, C, S,
                                     gt.defined() ? gt.data() : nullptr, mean.data(), rstd.data(),
                                     training, ptr(0), ptr(iw), ptr(ib));
                  return gs;
                });
}

}  // namespace qkv
