// Module: a node of a model tree holding parameters (Vars that require a
// gradient) and child modules, with PyTorch's dotted names
// ("encoder.rnn.weight_ih_l0"), so a state_dict saved by PyTorch loads here by
// name. Forward signatures differ per module (an LSTM returns states), so the
// base has only the named forward (nn/forward_io.h); UnaryModule is the
// Var -> Var kind that Sequential chains.
#pragma once
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "nn/forward_io.h"

namespace qkv {

// What load_state_dict found, by name (empty when everything matched).
struct LoadReport {
  std::vector<std::string> missing;     // parameters the file lacks
  std::vector<std::string> unexpected;  // tensors the module lacks
  std::vector<std::string> mismatched;  // "name: file [3,4] vs module [4,3]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Depth-first in registration order, as torch.nn.Module.named_parameters().
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<Var> parameters() const;
  // Non-trainable state saved with the parameters (running statistics).
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Integer buffers (torch's int64 counters, e.g. num_batches_tracked): held
  // as int32 here, saved as I64 as torch saves them.
  std::vector<std::pair<std::string, IntTensor>> named_int_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  int64_t num_parameters() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  void zero_grad();

  // One line: "Linear(in_features=4, out_features=3, bias=true)".
  virtual std::string describe() const = 0;
  // The tree, one module per line, with parameter counts.
  std::string summary() const;

  // Runs on inputs named as PyTorch's forward arguments and names every
  // output (nn/forward_io.h; the table per module is in tools/runner/forward.h).
  // The default is an Error "forward: <describe()> has no named forward".
  virtual NamedOutputs forward_named(NamedInputs& in);

  // Parameters and float buffers by dotted name; the integer buffers apart.
  std::map<std::string, Tensor> state_dict() const;
  std::map<std::string, IntTensor> int_state_dict() const;
  // Copies tensors in by name. Strict: any missing, unexpected or mis-shaped
  // tensor is an Error listing them all (nothing is copied then). Non-strict:
  // copies what matches and returns the report. An integer buffer is taken
  // from `ints`, else from a float tensor of that name (whole values: older
  // files kept counters as F32).
  LoadReport load_state_dict(const std::map<std::string, Tensor>& tensors,
                             const std::map<std::string, IntTensor>& ints, bool strict = true);
  LoadReport load_state_dict(const std::map<std::string, Tensor>& tensors, bool strict = true) {
    return load_state_dict(tensors, {}, strict);
  }

 protected:
  Var register_parameter(std::string name, Tensor value);
  void register_buffer(std::string name, Tensor value);
  void register_int_buffer(std::string name, IntTensor value);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    add_child(std::move(name), m);
    return m;
  }
  // Called by train(); modules with their own mode-dependent state override it.
  virtual void on_train(bool) {}

 private:
  void add_child(std::string name, std::shared_ptr<Module> m);
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;
  void collect_buffers(const std::string& prefix,
                       std::vector<std::pair<std::string, Tensor>>& out) const;
  void collect_int_buffers(const std::string& prefix,
                           std::vector<std::pair<std::string, IntTensor>>& out) const;
  void summary_lines(const std::string& name, int depth, std::string& out) const;

  std::vector<std::pair<std::string, Var>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, IntTensor>> int_buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Eval mode (dropout off, BatchNorm's running statistics) while in scope, the
// mode before restored after. A module already in eval mode is not written to,
// so threads may each hold one over a shared module that is in eval mode.
class EvalModeScope {
 public:
  explicit EvalModeScope(Module& m) : m_(m), was_training_(m.training()) {
    if (was_training_) m_.eval();
  }
  ~EvalModeScope() {
    if (was_training_) m_.train(true);
  }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  Module& m_;
  bool was_training_;
};

// A module mapping one Var to one Var (layers, activations, Sequential).
// Module is a virtual base so that a Sequential can be a Model too.
class UnaryModule : public virtual Module {
 public:
  virtual Var forward(const Var& x) = 0;
  Var operator()(const Var& x) { return forward(x); }
  NamedOutputs forward_named(NamedInputs& in) override;  // input -> output
  // Multiply-adds of one forward from x to y (for FLOPs estimates). Default: every
  // parameter once per position of y (its elements over its channels, dim 1);
  // Conv2d and Linear count exactly.
  virtual double forward_macs(const Tensor& x, const Tensor& y) const {
    (void)x;
    const int64_t p = num_parameters();
    return p > 0 ? double(p) * double(y.numel() / std::max<int64_t>(1, y.size(1))) : 0.0;
  }
};

}  // namespace qkv
