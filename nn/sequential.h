// Sequential: children applied in order, named "0", "1", ... as in
// torch.nn.Sequential (so "net.0.weight" matches). As a Model it is an image
// classifier: images [B,C,IH,IW] -> logits [B,classes].
#pragma once
#include <memory>
#include <vector>

#include "nn/model.h"
#include "nn/module.h"

namespace qkv {

class Sequential : public UnaryModule, public Model {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> layers);
  Sequential& push_back(std::shared_ptr<UnaryModule> layer);
  Var forward(const Var& x) override;
  std::string describe() const override;
  size_t size() const { return layers_.size(); }
  UnaryModule& operator[](size_t i) { return *layers_.at(i); }

  // ---- Model: image_classification; loss, accuracy ----
  std::vector<TaskKind> tasks() const override { return {TaskKind::image_classification}; }
  Var loss(const Batch& b) override { return classification_loss(forward(Var(b.images)), b); }
  int64_t loss_units(const Batch& b) const override { return b.size; }
  void eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) override {
    classification_eval(forward(Var(b.images)), b, s, o);
  }
  Metrics metrics(const EvalSums& s) const override { return classification_metrics(s); }
  // The class id (no attention).
  Predicted predict(const Batch& one, const PredictParams& p) override;
  // 3 x forward (one image through the layers, 2 x each layer's forward_macs) x batch.
  double flops_per_step(const Batch& b, std::string* how) const override;

 private:
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace qkv
