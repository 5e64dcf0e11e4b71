#include "nn/conv.h"

#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/init.h"

namespace qkv {

Conv2d::Conv2d(const Conv2dOptions& o, Generator& gen) : options(o) {
  check(o.in_channels >= 1 && o.out_channels >= 1 && o.groups >= 1,
        "Conv2d: in_channels, out_channels and groups must be >= 1, got ", o.in_channels, ", ",
        o.out_channels, ", ", o.groups);
  check(o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0, "Conv2d: in_channels ",
        o.in_channels, " and out_channels ", o.out_channels, " must be divisible by groups ",
        o.groups);
  check(o.kernel_h >= 1 && o.kernel_w >= 1, "Conv2d: kernel_size must be >= 1, got ", o.kernel_h,
        "x", o.kernel_w);
  Tensor w({o.out_channels, o.in_channels / o.groups, o.kernel_h, o.kernel_w});
  init::kaiming_uniform(w, gen, std::sqrt(5.f));
  weight = register_parameter("weight", w);
  if (o.bias) {
    const float bound = 1.f / std::sqrt(float(o.in_channels / o.groups * o.kernel_h * o.kernel_w));
    Tensor b({o.out_channels});
    init::uniform(b, -bound, bound, gen);
    bias = register_parameter("bias", b);
  }
}

Var Conv2d::forward(const Var& x) {
  const auto& o = options;
  return conv2d(x, weight, bias,
                {o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dil_h, o.dil_w, o.groups});
}

std::string Conv2d::describe() const {
  const auto& o = options;
  std::ostringstream s;
  s << "Conv2d(" << o.in_channels << ", " << o.out_channels << ", kernel_size=(" << o.kernel_h
    << ", " << o.kernel_w << "), stride=(" << o.stride_h << ", " << o.stride_w << "), padding=("
    << o.pad_h << ", " << o.pad_w << ")";
  if (o.dil_h != 1 || o.dil_w != 1) s << ", dilation=(" << o.dil_h << ", " << o.dil_w << ")";
  if (o.groups != 1) s << ", groups=" << o.groups;
  s << ", bias=" << (o.bias ? "true" : "false") << ")";
  return s.str();
}

}  // namespace qkv
