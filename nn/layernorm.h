// LayerNorm: y = (x - mean) / sqrt(var + eps) * weight + bias over the last
// axis (torch.nn.LayerNorm over one normalized dimension: names "weight",
// "bias", initialised to ones and zeros). A thin module over the fused
// autograd layer_norm; not here: normalising over several trailing axes.
#pragma once
#include "nn/module.h"

namespace qkv {

struct LayerNormOptions {
  int64_t normalized_shape = 0;     // D, the last axis
  float eps = 1e-5f;
  bool elementwise_affine = true;   // learnable weight and bias
};

class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(const LayerNormOptions& opt);
  Var forward(const Var& x) override;  // x: [..., D] -> [..., D]
  std::string describe() const override;

  LayerNormOptions options;
  Var weight;  // [D] (undefined without elementwise_affine)
  Var bias;    // [D]
};

}  // namespace qkv
