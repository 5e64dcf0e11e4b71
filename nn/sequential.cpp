// Sequential (see sequential.h).
#include "nn/sequential.h"

#include "engine/error.h"

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

// ---- Model ----------------------------------------------------------------------------

Predicted Sequential::predict(const Batch& one, const PredictParams& p) {
  check_no_generation(p);
  check(one.images.defined(), "predict: the model ", describe(), " takes images [1,C,IH,IW]");
  NoGrad no_grad;
  return {{argmax_rows(forward(Var(one.images)).value())[0]}, Tensor()};
}

double Sequential::flops_per_step(const Batch& b, std::string* how) const {
  if (!b.images.defined()) return Model::flops_per_step(b, how);
  // Runs one image through the layers, counting 2 x multiply-adds of each.
  NoGrad no_grad;
  Var x(b.images.narrow_rows(0, 1));  // [1,C,IH,IW]
  double fwd = 0;
  for (const auto& layer : layers_) {
    Var y = layer->forward(x);
    fwd += 2.0 * layer->forward_macs(x.value(), y.value());
    x = y;
  }
  if (how)
    *how = "3 x forward (" + human_count(fwd) + " per image, conv and linear layers exact) x batch";
  return 3 * fwd * double(b.size);
}

}  // namespace qkv
