#include "nn/activation.h"

#include <sstream>

#include "autograd/ops.h"
#include "engine/rng.h"

namespace qkv {

Activation::Activation(UnaryOp o) : op(o) {
  check(o == UnaryOp::relu || o == UnaryOp::gelu || o == UnaryOp::tanh || o == UnaryOp::sigmoid,
        "Activation: ", unary_name(o), " is not an activation (relu, gelu, tanh, sigmoid)");
}

Var Activation::forward(const Var& x) { return unary(op, x); }

std::string Activation::describe() const {
  switch (op) {
    case UnaryOp::relu: return "ReLU()";
    case UnaryOp::gelu: return "GELU()";
    case UnaryOp::tanh: return "Tanh()";
    default: return "Sigmoid()";
  }
}

Dropout::Dropout(float prob, Generator& gen) : p(prob), gen_(&gen) {
  check(p >= 0.f && p < 1.f, "Dropout: expected 0 <= p < 1, got ", p);
}

Var Dropout::forward(const Var& x) { return dropout(x, p, training(), *gen_); }

std::string Dropout::describe() const {
  std::ostringstream o;
  o << "Dropout(p=" << p << ")";
  return o.str();
}

}  // namespace qkv
