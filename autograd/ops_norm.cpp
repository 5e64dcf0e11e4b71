// LayerNorm over the last axis as one fused op: the engine's two-pass forward
// and its fused backward kernel. The backward keeps x, the per-row mean and
// rstd and gamma (not y). The mean/var/rsqrt composite is its test oracle
// (tests/autograd/test_norm.cpp). Not here: batch, group or RMS norms.
#include "autograd/ops.h"
#include "engine/kernels/layernorm.h"

namespace qkv {

// x: [..., D]; gamma, beta: [D] or undefined (no affine) -> [..., D]
Var layer_norm(const Var& x, const Var& gamma, const Var& beta, float eps) {
  check(x.defined(), "layer_norm: undefined input");
  check(x.dim() >= 1, "layer_norm: expected at least 1 dimension, got shape ", x.shape());
  const int64_t D = x.size(-1);
  for (const auto& [v, name] : {std::pair{&gamma, "gamma"}, std::pair{&beta, "beta"}})
    if (v->defined())  // (check's message parts are evaluated eagerly)
      check(v->shape() == Shape{D}, "layer_norm: ", name, " has shape ", v->shape(), ", expected [",
            D, "] (last axis of ", x.shape(), ")");
  check(eps >= 0.f, "layer_norm: eps must be >= 0, got ", eps);

  const Tensor g = gamma.defined() ? gamma.value() : Tensor();
  LayerNormResult r = layernorm(x.value(), g, beta.defined() ? beta.value() : Tensor(), eps);

  // Inputs: x, then gamma and beta when defined; slot k of each in the list.
  std::vector<Var> inputs{x};
  const int ig = gamma.defined() ? int(inputs.size()) : -1;
  if (ig >= 0) inputs.push_back(gamma);
  const int ib = beta.defined() ? int(inputs.size()) : -1;
  if (ib >= 0) inputs.push_back(beta);

  // y = x_hat * gamma + beta, x_hat = (x - mean) * rstd:
  //   dx = rstd * (dy*gamma - mean(dy*gamma) - x_hat * mean(dy*gamma * x_hat))
  //   dgamma = sum_rows dy * x_hat,  dbeta = sum_rows dy            ([D])
  return record("layer_norm", r.y, inputs,
                [xv = x.value(), mean = r.mean, rstd = r.rstd, g, ig, ib](
                    const Tensor& dy, const std::vector<bool>& needs) {
                  std::vector<Tensor> gs(needs.size());
                  const int64_t D = xv.size(-1), rows = mean.numel();
                  if (needs[0]) gs[0] = Tensor(xv.shape());
                  if (ig >= 0 && needs[size_t(ig)]) gs[size_t(ig)] = Tensor(Shape{D});
                  if (ib >= 0 && needs[size_t(ib)]) gs[size_t(ib)] = Tensor(Shape{D});
                  auto ptr = [&](int k) {
                    return k >= 0 && gs[size_t(k)].defined() ? gs[size_t(k)].data() : nullptr;
                  };
                  layernorm_backward(xv.data(), mean.data(), rstd.data(),
                                     g.defined() ? g.data() : nullptr, dy.data(), rows, D, ptr(0),
                                     ptr(ig), ptr(ib));
                  return gs;
                });
}

}  // namespace qkv
