#include "autograd/var.h"

#include "engine/kernels/binary.h"

namespace qkv {

// Gradient bookkeeping of one Var, separate from its value: nodes hold slots,
// not values, so the tape never keeps an activation alive that no backward
// closure captured.
struct GradSlot {
  Shape shape;                 // of the value, for checking incoming gradients
  Tensor grad;
  bool owned = false;          // grad is a private buffer (may be updated in place)
  bool requires_grad = false;
  bool leaf = true;
  bool recorded = false;       // produced by a node still on the tape
  const char* op = nullptr;    // producing op, for messages
};

struct VarState {
  Tensor value;
  std::shared_ptr<GradSlot> slot = std::make_shared<GradSlot>();
  std::string name;
};

namespace {

struct Node {
  const char* op;
  std::vector<std::shared_ptr<GradSlot>> inputs;
  std::vector<std::shared_ptr<GradSlot>> outputs;
  BackwardMultiFn backward;
};

thread_local std::vector<Node> t_tape;
thread_local bool t_grad_enabled = true;

// Adds g into slot->grad: the first gradient is adopted without a copy (it
// may alias another tensor, so it is not owned); later ones are summed into an
// owned buffer.
void accumulate(GradSlot& slot, Tensor g, const char* op, size_t input) {
  check(g.shape() == slot.shape, "backward of ", op, ": gradient for input ", input,
        " has shape ", g.shape(), ", expected ", slot.shape);
  if (!slot.grad.defined()) {
    slot.grad = std::move(g);
    slot.owned = false;
  } else if (slot.owned) {
    binary_inplace(BinaryOp::add, slot.grad, g);
  } else if (g.sole_owner()) {
    // The new gradient is a fresh buffer nobody else sees (and, just
    // written, still in cache): sum into it rather than into a third buffer.
    binary_inplace(BinaryOp::add, g, slot.grad);
    slot.grad = std::move(g);
    slot.owned = true;
  } else {
    slot.grad = add(slot.grad, g);
    slot.owned = true;
  }
}

// Leaves' gradients are user-visible (optimizers, clipping scale them in
// place): make sure each owns its buffer. A gradient no other handle shares
// (the fresh result of its op's backward) is owned as it is: copying every
// leaf's gradient cost a full pass over each (a [B,T,3D] input's, 12 MB).
void own(GradSlot& slot) {
  if (slot.grad.defined() && !slot.owned) {
    if (!slot.grad.sole_owner()) slot.grad = slot.grad.clone();
    slot.owned = true;
  }
}

}  // namespace

// ---- Var ----------------------------------------------------------------------------

Var::Var(Tensor value, bool requires_grad) : s_(std::make_shared<VarState>()) {
  check(value.defined(), "Var: undefined value");
  s_->slot->shape = value.shape();
  s_->slot->requires_grad = requires_grad;
  s_->value = std::move(value);
}

const Tensor& Var::value() const {
  check(defined(), "Var: undefined");
  return s_->value;
}

Tensor& Var::value_mut() {
  check(defined(), "Var: undefined");
  return s_->value;
}

bool Var::requires_grad() const { return defined() && s_->slot->requires_grad; }

void Var::set_requires_grad(bool r) {
  check(defined(), "Var: undefined");
  check(s_->slot->leaf, "set_requires_grad: only leaf Vars (not results of ops) can change it",
        s_->name.empty() ? "" : " ('" + s_->name + "')");
  s_->slot->requires_grad = r;
}

const Tensor& Var::grad() const {
  check(defined(), "Var: undefined");
  return s_->slot->grad;
}

bool Var::has_grad() const { return defined() && s_->slot->grad.defined(); }

void Var::zero_grad() {
  if (defined()) s_->slot->grad = Tensor();
}

void Var::set_grad(Tensor g) {
  check(defined(), "Var: undefined");
  check(!g.defined() || g.shape() == s_->slot->shape, "set_grad: gradient shape ", g.shape(),
        " differs from the value's ", s_->slot->shape);
  s_->slot->grad = std::move(g);
  s_->slot->owned = true;
}

bool Var::is_leaf() const { return !defined() || s_->slot->leaf; }

Var Var::detach() const { return Var(value(), false); }

const std::string& Var::name() const {
  static const std::string empty;
  return defined() ? s_->name : empty;
}

Var& Var::set_name(std::string n) {
  check(defined(), "Var: undefined");
  s_->name = std::move(n);
  return *this;
}

// ---- recording ------------------------------------------------------------------------

bool grad_enabled() { return t_grad_enabled; }

NoGrad::NoGrad() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGrad::~NoGrad() { t_grad_enabled = prev_; }

bool needs_record(const std::vector<Var>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Var& v : inputs)
    if (v.requires_grad()) return true;
  return false;
}

std::vector<Var> record_multi(const char* name, std::vector<Tensor> outs,
                              const std::vector<Var>& inputs, BackwardMultiFn backward) {
  std::vector<Var> vs;
  vs.reserve(outs.size());
  if (!needs_record(inputs)) {
    for (Tensor& t : outs) vs.emplace_back(std::move(t), false);
    return vs;
  }
  Node node{name, {}, {}, std::move(backward)};
  node.inputs.reserve(inputs.size());
  for (const Var& in : inputs) {
    check(in.defined(), name, ": undefined input");
    node.inputs.push_back(in.state()->slot);
  }
  for (Tensor& t : outs) {
    Var v(std::move(t), true);
    GradSlot& s = *v.state()->slot;
    s.leaf = false;
    s.recorded = true;
    s.op = name;
    node.outputs.push_back(v.state()->slot);
    vs.push_back(std::move(v));
  }
  t_tape.push_back(std::move(node));
  return vs;
}

Var record(const char* name, Tensor out, const std::vector<Var>& inputs, BackwardFn backward) {
  if (!needs_record(inputs)) return Var(std::move(out), false);
  std::vector<Tensor> outs;
  outs.push_back(std::move(out));
  return record_multi(name, std::move(outs), inputs,
                      [fn = std::move(backward)](const std::vector<Tensor>& douts,
                                                 const std::vector<bool>& needs) {
                        return fn(douts[0], needs);
                      })[0];
}

size_t tape_size() { return t_tape.size(); }

void tape_clear() {
  for (Node& n : t_tape)
    for (auto& o : n.outputs) o->recorded = false;
  t_tape.clear();
  t_tape.shrink_to_fit();
}

// ---- backward ---------------------------------------------------------------------------

void backward(const Var& loss) {
  check(loss.defined(), "backward: undefined Var");
  check(loss.numel() == 1, "backward: the output has shape ", loss.shape(),
        "; a non-scalar output needs an explicit upstream gradient of that shape");
  backward(loss, Tensor::full(loss.shape(), 1.f));
}

void backward(const Var& out, const Tensor& upstream) {
  check(out.defined(), "backward: undefined Var");
  check(out.requires_grad(), "backward: the Var",
        out.name().empty() ? "" : " '" + out.name() + "'",
        " does not require a gradient (no input of the ops that made it requires one)");
  check(upstream.defined() && upstream.shape() == out.shape(), "backward: upstream gradient has shape ",
        upstream.defined() ? upstream.shape() : Shape{}, ", expected ", out.shape());
  GradSlot& root = *out.state()->slot;
  check(root.leaf || root.recorded, "backward: the graph that made this Var was already used",
        " by a backward or cleared; run the forward again");
  accumulate(root, upstream, "backward", 0);  // adopted, not owned: never written in place

  // The tape is in execution order, hence topological: reverse is safe.
  for (auto it = t_tape.rbegin(); it != t_tape.rend(); ++it) {
    Node& n = *it;
    std::vector<Tensor> douts;
    douts.reserve(n.outputs.size());
    bool flows = false;
    for (auto& o : n.outputs) {
      flows |= o->grad.defined();
      douts.push_back(o->grad);
    }
    if (!flows) continue;  // no gradient flows through this node
    std::vector<bool> needs(n.inputs.size());
    bool any = false;
    for (size_t i = 0; i < needs.size(); ++i) any |= (needs[i] = n.inputs[i]->requires_grad);
    for (auto& o : n.outputs) o->grad = Tensor();  // an intermediate's gradient is done
    if (any) {
      std::vector<Tensor> gs = n.backward(douts, needs);
      douts.clear();
      check(gs.size() == n.inputs.size(), "backward of ", n.op, ": returned ", gs.size(),
            " gradients for ", n.inputs.size(), " inputs");
      for (size_t i = 0; i < gs.size(); ++i)
        if (needs[i] && gs[i].defined()) accumulate(*n.inputs[i], std::move(gs[i]), n.op, i);
    }
    n.backward = nullptr;  // frees what the closure saved, as early as possible
  }
  for (Node& n : t_tape)
    for (auto& in : n.inputs)
      if (in->leaf) own(*in);
  if (root.leaf) own(root);
  tape_clear();
}

}  // namespace qkv
