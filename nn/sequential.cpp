#include "nn/sequential.h"

namespace qkv {

Sequential::Sequential(std::vector<std::shared_ptr<UnaryModule>> layers) {
  for (auto& l : layers) push_back(std::move(l));
}

Sequential& Sequential::push_back(std::shared_ptr<UnaryModule> layer) {
  layers_.push_back(register_module(std::to_string(layers_.size()), std::move(layer)));
  return *this;
}

Var Sequential::forward(const Var& x) {
  Var y = x;
  for (auto& l : layers_) y = l->forward(y);
  return y;
}

std::string Sequential::describe() const {
  return "Sequential(" + std::to_string(layers_.size()) + " layers)";
}

}  // namespace qkv
