// Var and the tape: reverse-mode automatic differentiation over engine tensors.
//
// A Var is a handle (copies share state) to a value tensor, an optional
// gradient, and whether it requires one. An op on Vars that require gradients
// appends one Node to the thread's tape: its inputs, what its backward needs
// saved (captured by the closure, nothing more), and the closure itself.
// backward(loss) walks the tape in reverse — the tape is already in
// topological order — accumulates into .grad(), then clears the tape, which
// frees every saved intermediate. Under a NoGrad scope nothing is recorded.
//
// What this is not: a graph you can differentiate twice (no double backward),
// or a multi-threaded tape (each thread records its own).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace qkv {

struct VarState;

class Var {
 public:
  Var() = default;  // undefined
  explicit Var(Tensor value, bool requires_grad = false);

  bool defined() const { return bool(s_); }
  const Tensor& value() const;
  Tensor& value_mut();  // for optimizers: in-place parameter updates
  const Shape& shape() const { return value().shape(); }
  int64_t dim() const { return value().dim(); }
  int64_t size(int64_t axis) const { return value().size(axis); }
  int64_t numel() const { return value().numel(); }
  float item() const { return value().item(); }

  bool requires_grad() const;
  void set_requires_grad(bool r);
  // The accumulated gradient (undefined until a backward reaches this Var).
  const Tensor& grad() const;
  bool has_grad() const;
  void zero_grad();                 // drops the gradient
  void set_grad(Tensor g);          // replaces it (shape-checked)
  bool is_leaf() const;             // not produced by a recorded op
  Var detach() const;               // same value storage, no history, no grad

  // Name used in error messages and gradcheck reports ("" if none).
  const std::string& name() const;
  Var& set_name(std::string n);

  VarState* state() const { return s_.get(); }
  const std::shared_ptr<VarState>& state_ptr() const { return s_; }

 private:
  std::shared_ptr<VarState> s_;
};

// ---- recording ops ---------------------------------------------------------------
// Backward closure: given d(loss)/d(output), return d(loss)/d(input_i) for each
// input (an undefined Tensor where none is needed or none flows). It is only
// called with needs[i] telling which inputs require a gradient.
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& dout, const std::vector<bool>& needs)>;

// True when gradients are being recorded (no NoGrad scope is active) and at
// least one input requires a gradient.
bool needs_record(const std::vector<Var>& inputs);

// Wraps `out` as the result of op `name` on `inputs`. When recording, appends a
// node with `backward`; otherwise returns a plain Var (backward is discarded
// unevaluated, so closures should capture cheaply).
Var record(const char* name, Tensor out, const std::vector<Var>& inputs, BackwardFn backward);

// An op with several outputs (an LSTM layer: output, h_n, c_n). The closure
// gets one upstream gradient per output, undefined where none flowed (treat
// as zeros), and returns one gradient per input.
using BackwardMultiFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& douts,
                                                          const std::vector<bool>& needs)>;
std::vector<Var> record_multi(const char* name, std::vector<Tensor> outs,
                              const std::vector<Var>& inputs, BackwardMultiFn backward);

// ---- running backward -----------------------------------------------------------------
// Scalar loss: seeds d(loss)/d(loss) = 1. Non-scalar: pass `upstream` of the
// same shape. Accumulates into every reachable Var that requires a gradient,
// then clears the tape.
void backward(const Var& loss);
void backward(const Var& out, const Tensor& upstream);

// Discards everything recorded on this thread (and the memory it holds).
void tape_clear();
size_t tape_size();

// While alive, ops record nothing (evaluation, optimizer updates).
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};
bool grad_enabled();

}  // namespace qkv
