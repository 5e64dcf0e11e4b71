// Sequential: children applied in order, named "0", "1", ... as in
// torch.nn.Sequential (so "net.0.weight" matches).
#pragma once
#include <memory>
#include <vector>

#include "nn/module.h"

namespace qkv {

class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> layers);
  Sequential& push_back(std::shared_ptr<UnaryModule> layer);
  Var forward(const Var& x) override;
  std::string describe() const override;
  size_t size() const { return layers_.size(); }
  UnaryModule& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace qkv
