// qkv forward: the interop and parity door (see forward.h). The module names
// its own inputs and outputs (Module::forward_named); this file only moves
// tensors between files and the module, and runs the backward.
#include "tools/runner/forward.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/builder.h"
#include "nn/safetensors.h"

namespace qkv::runner {
namespace {

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), path, ": cannot open the module config");
  std::ostringstream text;
  text << in.rdbuf();
  Json j = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && j.is_object(), path, ": not a JSON object");
  return j;
}

bool is_upstream(const std::string& name) { return name.rfind("grad_", 0) == 0; }

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "nothing" : s;
}

// The file's tensors as named inputs: floats become leaves (requiring a
// gradient under --grad), except the upstream gradients "grad_<output>".
NamedInputs named_inputs(const TensorFile& x, const std::string& path, bool grad) {
  std::map<std::string, Var> floats;
  for (const auto& [name, t] : x.floats)
    if (!is_upstream(name)) floats[name] = Var(t.clone(), grad);
  return NamedInputs(std::move(floats), x.ints, path);
}

// Every tensor in the file must be read by the module or be the upstream of
// one of its outputs: a misspelt name would otherwise be silently ignored.
void check_all_used(const Module& m, const NamedInputs& in, const TensorFile& x,
                    const NamedOutputs& outs, const std::string& path) {
  for (const auto& name : in.unread())
    if (!is_upstream(name))
      fail(path, ": '", name, "' is not an input of ", m.describe(), " (it read ", join(in.read()),
           ")");
  std::vector<std::string> have;
  for (const auto& [name, v] : outs)
    if (v.defined()) have.push_back(name);
  for (const auto& [name, _] : x.floats) {
    if (!is_upstream(name)) continue;
    const std::string out = name.substr(5);
    check(std::find(have.begin(), have.end(), out) != have.end(), path, ": upstream '", name,
          "' matches no output (", m.describe(), " gives ", join(have), ")");
  }
}

// L = sum_o sum(o * upstream_o): one scalar, one backward.
void run_backward(const NamedOutputs& outs, const TensorFile& x, const std::string& path) {
  Var total;
  for (const auto& [name, v] : outs) {
    auto it = x.floats.find("grad_" + name);
    if (!v.defined() || it == x.floats.end()) continue;
    check(it->second.shape() == v.shape(), path, ": grad_", name, " has shape ",
          shape_str(it->second.shape()), ", the output ", name, " has ", shape_str(v.shape()));
    check(v.requires_grad(), path, ": grad_", name, " given, but the output ", name,
          " carries no gradient");
    const Var term = sum(mul(v, Var(it->second)));
    total = total.defined() ? add(total, term) : term;
  }
  check(total.defined(), path, ": --grad needs an upstream gradient 'grad_<output>' for one of ",
        "the outputs");
  backward(total);
}

}  // namespace

void run_forward(const ForwardOptions& opt) {
  Generator gen(opt.seed);
  Built b = build_module(read_json_file(opt.module_json), gen, "module");
  Module& m = *b.module;
  m.eval();
  if (!opt.weights.empty()) {
    TensorFile w = load_safetensors(opt.weights);
    try {
      m.load_state_dict(w.floats, w.ints, /*strict=*/true);
    } catch (const Error& e) {
      fail(opt.weights, ": ", e.what());
    }
  }
  const TensorFile x = load_safetensors(opt.input);
  NamedInputs in = named_inputs(x, opt.input, opt.grad);
  for (auto& p : m.parameters()) p.zero_grad();
  NamedOutputs outs;
  if (opt.grad) {
    outs = m.forward_named(in);
  } else {
    NoGrad no_grad;
    outs = m.forward_named(in);
  }
  check_all_used(m, in, x, outs, opt.input);
  TensorFile y;
  for (const auto& [name, v] : outs)
    if (v.defined()) y.floats[name] = v.value();
  if (opt.grad) {
    run_backward(outs, x, opt.input);
    for (const auto& [name, v] : in.floats())
      y.floats["grad." + name] = v.has_grad() ? v.grad() : zeros(v.shape());
    for (const auto& [name, p] : m.named_parameters())
      y.floats[name] = p.has_grad() ? p.grad() : zeros(p.shape());
  }
  save_safetensors(opt.output, y);
}

}  // namespace qkv::runner
