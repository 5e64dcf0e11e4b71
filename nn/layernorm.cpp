#include "nn/layernorm.h"

#include <sstream>

#include "autograd/ops.h"
#include "engine/error.h"

namespace qkv {

LayerNorm::LayerNorm(const LayerNormOptions& opt) : options(opt) {
  check(opt.normalized_shape >= 1, "LayerNorm: normalized_shape must be >= 1, got ",
        opt.normalized_shape);
  check(opt.eps >= 0.f, "LayerNorm: eps must be >= 0, got ", opt.eps);
  if (opt.elementwise_affine) {
    weight = register_parameter("weight", Tensor::full({opt.normalized_shape}, 1.f));
    bias = register_parameter("bias", Tensor::zeros({opt.normalized_shape}));
  }
}

Var LayerNorm::forward(const Var& x) {
  check(x.dim() >= 1 && x.size(-1) == options.normalized_shape, "LayerNorm: input ", x.shape(),
        " does not end in normalized_shape=", options.normalized_shape);
  return layer_norm(x, weight, bias, options.eps);
}

std::string LayerNorm::describe() const {
  std::ostringstream s;
  s << "LayerNorm(" << options.normalized_shape << ", eps=" << options.eps
    << ", elementwise_affine=" << (options.elementwise_affine ? "true" : "false") << ")";
  return s.str();
}

}  // namespace qkv
