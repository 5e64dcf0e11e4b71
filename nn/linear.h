// Linear: y = x W^T + b, W: [out, in], b: [out] (torch.nn.Linear's layout and
// names), initialised as torch does: W ~ kaiming_uniform(a = sqrt 5), i.e.
// U(-1/sqrt(in), 1/sqrt(in)), and b ~ U(-1/sqrt(in), 1/sqrt(in)).
#pragma once
#include "nn/module.h"

namespace qkv {

class Generator;

struct LinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
};

class Linear : public UnaryModule {
 public:
  Linear(const LinearOptions& opt, Generator& gen);
  Var forward(const Var& x) override;  // x: [..., in] -> [..., out]
  // Each output element: in multiply-adds.
  double forward_macs(const Tensor&, const Tensor& y) const override {
    return double(y.numel()) * double(options.in_features);
  }
  std::string describe() const override;

  LinearOptions options;
  Var weight;  // [out, in]
  Var bias;    // [out] (undefined without bias)
};

}  // namespace qkv
