// Conv2d: torch.nn.Conv2d's parameters, names and default init over NCHW:
// weight [out, in/groups, kh, kw] ~ kaiming_uniform(a = sqrt 5), i.e.
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups * kh * kw, and
// bias [out] ~ the same bound. padding_mode is always zeros.
#pragma once
#include "nn/module.h"

namespace qkv {

class Generator;

struct Conv2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel_h = 3, kernel_w = 3;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public UnaryModule {
 public:
  Conv2d(const Conv2dOptions& opt, Generator& gen);
  Var forward(const Var& x) override;  // x: [B,in,H,W] -> [B,out,HO,WO]
  // Each output element: in/groups x kh x kw multiply-adds.
  double forward_macs(const Tensor&, const Tensor& y) const override {
    return double(y.numel()) * double(weight.numel() / options.out_channels);
  }
  std::string describe() const override;

  Conv2dOptions options;
  Var weight;  // [out, in/groups, kh, kw]
  Var bias;    // [out] (undefined without bias)
};

}  // namespace qkv
