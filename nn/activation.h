// Activation and dropout modules: thin Var -> Var wrappers over the autograd
// ops, so they can sit in a Sequential. Dropout draws its masks from the
// experiment's generator and is the identity in eval mode.
#pragma once
#include "engine/kernels/unary.h"
#include "nn/module.h"

namespace qkv {

class Generator;

// relu, gelu, tanh, sigmoid by UnaryOp.
class Activation : public UnaryModule {
 public:
  explicit Activation(UnaryOp op);
  Var forward(const Var& x) override;
  std::string describe() const override;
  UnaryOp op;
};

struct DropoutOptions {
  float p = 0.5f;  // probability of zeroing an element, in [0, 1)
};

class Dropout : public UnaryModule {
 public:
  Dropout(float p, Generator& gen);
  Var forward(const Var& x) override;
  std::string describe() const override;
  float p;

 private:
  Generator* gen_;
};

}  // namespace qkv
