#include "nn/batchnorm.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "autograd/ops.h"
#include "engine/collective.h"

namespace qkv {
namespace {

// ---- synchronised batch norm: training statistics over every process's slice
// of the global batch (engine/collective.h), so N processes normalise exactly
// as one process with the whole batch would. Sums in double; two reductions
// forward (count and sums, then squared deviations), one backward.
// x: [N,C,S...]; weight, bias: [C] or undefined -> x's shape
Var batch_norm_synced(const Var& x, const Var& weight, const Var& bias, Tensor& running_mean,
                      Tensor& running_var, float momentum, float eps, ProcessGroup& group) {
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(1, N * C);
  const float* xv = x.value().data();
  std::vector<double> buf(size_t(C + 1), 0.0);  // per-channel sums | element count
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) buf[size_t(c)] += xv[(n * C + c) * S + i];
  buf[size_t(C)] = double(N * S);
  group.allreduce_sum(buf.data(), C + 1);
  const double M = buf[size_t(C)];
  check(M > 1, "batch_norm: training needs more than one value per channel over the ranks");
  Tensor mean(Shape{C}), rstd(Shape{C});
  std::vector<double> sq(size_t(C), 0.0);
  for (int64_t c = 0; c < C; ++c) mean.data()[c] = float(buf[size_t(c)] / M);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) {
        const double d = double(xv[(n * C + c) * S + i]) - buf[size_t(c)] / M;
        sq[size_t(c)] += d * d;
      }
  group.allreduce_sum(sq.data(), C);
  for (int64_t c = 0; c < C; ++c) {
    rstd.data()[c] = float(1.0 / std::sqrt(sq[size_t(c)] / M + double(eps)));
    float* rm = running_mean.data();
    float* rv = running_var.data();
    rm[c] = (1.f - momentum) * rm[c] + momentum * mean.data()[c];
    rv[c] = (1.f - momentum) * rv[c] + momentum * float(sq[size_t(c)] / (M - 1));
  }
  const float* g = weight.defined() ? weight.value().data() : nullptr;
  const float* b = bias.defined() ? bias.value().data() : nullptr;
  Tensor y(x.shape());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (n * C + c) * S + i;
        const float h = (xv[k] - mean.data()[c]) * rstd.data()[c];
        y.data()[k] = h * (g ? g[c] : 1.f) + (b ? b[c] : 0.f);
      }
  std::vector<Var> inputs{x};
  const int iw = weight.defined() ? int(inputs.size()) : -1;
  if (iw >= 0) inputs.push_back(weight);
  const int ib = bias.defined() ? int(inputs.size()) : -1;
  if (ib >= 0) inputs.push_back(bias);
  // xhat = (x - mean) * rstd; dweight, dbias: this slice's sums (the trainer adds
  // the ranks' parameter gradients); dx = g rstd (dy - sum(dy)/M - xhat sum(dy xhat)/M)
  // with the sums over every rank's slice.
  return record(
      "batch_norm_synced", y, inputs,
      [xt = x.value(), mean, rstd, gt = weight.defined() ? weight.value() : Tensor(), iw, ib, M,
       &group](const Tensor& dy, const std::vector<bool>& needs) {
        const int64_t N = xt.size(0), C = xt.size(1), S = xt.numel() / (N * C);
        std::vector<double> sums(size_t(2 * C), 0.0);  // sum dy | sum dy * xhat
        const float *xv = xt.data(), *d = dy.data();
        for (int64_t n = 0; n < N; ++n)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < S; ++i) {
              const int64_t k = (n * C + c) * S + i;
              sums[size_t(c)] += d[k];
              sums[size_t(C + c)] += double(d[k]) * (xv[k] - mean.data()[c]) * rstd.data()[c];
            }
        std::vector<Tensor> gs(needs.size());
        if (iw >= 0 && needs[size_t(iw)]) {
          gs[size_t(iw)] = Tensor(Shape{C});
          for (int64_t c = 0; c < C; ++c) gs[size_t(iw)].data()[c] = float(sums[size_t(C + c)]);
        }
        if (ib >= 0 && needs[size_t(ib)]) {
          gs[size_t(ib)] = Tensor(Shape{C});
          for (int64_t c = 0; c < C; ++c) gs[size_t(ib)].data()[c] = float(sums[size_t(c)]);
        }
        if (needs[0]) {  // the same on every rank (one graph), so every rank reduces
          group.allreduce_sum(sums.data(), 2 * C);
          gs[0] = Tensor(xt.shape());
          for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) {
              const double gr = (gt.defined() ? gt.data()[c] : 1.f) * double(rstd.data()[c]);
              const double mdy = sums[size_t(c)] / M, mdyx = sums[size_t(C + c)] / M;
              for (int64_t i = 0; i < S; ++i) {
                const int64_t k = (n * C + c) * S + i;
                const double h = double(xv[k] - mean.data()[c]) * rstd.data()[c];
                gs[0].data()[k] = float(gr * (d[k] - mdy - h * mdyx));
              }
            }
        }
        return gs;
      });
}

}  // namespace

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& o) : options(o) {
  check(o.num_features >= 1, "BatchNorm2d: num_features must be >= 1, got ", o.num_features);
  check(o.eps > 0.f && o.momentum >= 0.f && o.momentum <= 1.f,
        "BatchNorm2d: expected eps > 0 and momentum in [0, 1], got ", o.eps, " and ", o.momentum);
  if (o.affine) {
    weight = register_parameter("weight", ones({o.num_features}));
    bias = register_parameter("bias", zeros({o.num_features}));
  }
  running_mean = zeros({o.num_features});
  running_var = ones({o.num_features});
  num_batches_tracked = IntTensor::scalar(0);
  register_buffer("running_mean", running_mean);
  register_buffer("running_var", running_var);
  register_int_buffer("num_batches_tracked", num_batches_tracked);
}

Var BatchNorm2d::forward(const Var& x) {
  check(x.dim() == 4 && x.size(1) == options.num_features, "BatchNorm2d: expected x of shape [B,",
        options.num_features, ",H,W], got ", x.shape());
  if (training()) num_batches_tracked.data()[0] += 1;
  if (training() && in_process_group())  // data-parallel: statistics over the global batch
    return batch_norm_synced(x, weight, bias, running_mean, running_var, options.momentum,
                             options.eps, *process_group());
  return batch_norm(x, weight, bias, running_mean, running_var, training(), options.momentum,
                    options.eps);
}

std::string BatchNorm2d::describe() const {
  std::ostringstream s;
  s << "BatchNorm2d(" << options.num_features << ", eps=" << options.eps
    << ", momentum=" << options.momentum << ", affine=" << (options.affine ? "true" : "false") << ")";
  return s.str();
}

}  // namespace qkv
