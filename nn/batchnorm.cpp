#include "nn/batchnorm.h"

#include <sstream>

#include "autograd/ops.h"

namespace qkv {

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
