#include "nn/linear.h"

#include <cmath>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/init.h"

namespace qkv {

Linear::Linear(const LinearOptions& opt, Generator& gen) : options(opt) {
  check(opt.in_features >= 1 && opt.out_features >= 1,
        "Linear: in_features and out_features must be >= 1, got ", opt.in_features, " and ",
        opt.out_features);
  Tensor w({opt.out_features, opt.in_features});
  init::kaiming_uniform(w, gen, std::sqrt(5.f));
  weight = register_parameter("weight", w);
  if (opt.bias) {
    const float bound = 1.f / std::sqrt(float(opt.in_features));
    Tensor b({opt.out_features});
    init::uniform(b, -bound, bound, gen);
    bias = register_parameter("bias", b);
  }
}

Var Linear::forward(const Var& x) {
  check(x.dim() >= 1 && x.size(-1) == options.in_features, "Linear: input ", x.shape(),
        " does not end in in_features=", options.in_features);
  Var y = matmul(x.dim() == 1 ? reshape(x, {1, options.in_features}) : x, weight, false, true);
  if (bias.defined()) y = y + bias;
  return x.dim() == 1 ? reshape(y, {options.out_features}) : y;
}

std::string Linear::describe() const {
  return "Linear(in_features=" + std::to_string(options.in_features) +
         ", out_features=" + std::to_string(options.out_features) +
         ", bias=" + (options.bias ? "true" : "false") + ")";
}

}  // namespace qkv
