// qkv forward: the interop and parity door (see forward.h).
#include "tools/runner/forward.h"

#include <fstream>
#include <sstream>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/builder.h"
#include "nn/multihead_attention.h"
#include "nn/rnn.h"
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

// The named inputs as Vars that require a gradient (when asked).
struct Inputs {
  const TensorFile& file;
  const std::string& path;
  bool grad;
  std::map<std::string, Var> vars;

  Var get(const std::string& name, bool required) {
    auto it = file.floats.find(name);
    check(it != file.floats.end() || !required, path, ": missing float tensor '", name, "'");
    if (it == file.floats.end()) return Var();
    Var v(it->second.clone(), grad);
    vars[name] = v;
    return v;
  }
  const IntTensor* ints(const std::string& name) const {
    auto it = file.ints.find(name);
    return it == file.ints.end() ? nullptr : &it->second;
  }
};

// Runs the module; returns its named outputs.
std::vector<std::pair<std::string, Var>> run_module(Module& m, Inputs& in) {
  if (auto* u = dynamic_cast<UnaryModule*>(&m))
    return {{"output", u->forward(in.get("input", true))}};
  if (auto* r = dynamic_cast<RNNBase*>(&m)) {
    const Var x = in.get("input", true), h0 = in.get("h0", false);
    const Var c0 = r->kind == RNNKind::lstm ? in.get("c0", false) : Var();
    const RNNOutput o = r->forward(x, in.ints("lengths"), h0, c0);
    std::vector<std::pair<std::string, Var>> out = {{"output", o.output}, {"h_n", o.h_n}};
    if (o.c_n.defined()) out.emplace_back("c_n", o.c_n);
    return out;
  }
  if (auto* a = dynamic_cast<MultiheadAttention*>(&m)) {
    const Var q = in.get("query", true);
    Var k = in.get("key", false), v = in.get("value", false);
    if (!k.defined()) k = q;
    if (!v.defined()) v = k;
    AttentionMasks masks;
    masks.key_lengths = in.ints("key_lengths");
    const MultiheadAttentionOutput o = a->forward(q, k, v, masks, /*need_weights=*/true);
    return {{"output", o.output}, {"weights", o.weights}};
  }
  fail("forward: a ", m.describe(),
       " is not supported (any one-tensor module, lstm, gru, multihead_attention)");
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
  Inputs in{x, opt.input, opt.grad, {}};
  for (auto& p : m.parameters()) p.zero_grad();
  std::vector<std::pair<std::string, Var>> outs;
  if (opt.grad) {
    outs = run_module(m, in);
  } else {
    NoGrad no_grad;
    outs = run_module(m, in);
  }
  TensorFile y;
  for (const auto& [name, v] : outs)
    if (v.defined()) y.floats[name] = v.value();
  if (opt.grad) {
    // L = sum_o sum(o * upstream_o): one scalar, one backward.
    Var total;
    for (const auto& [name, v] : outs) {
      const std::string key = name == "output" ? "grad_output" : "grad_" + name;
      auto it = x.floats.find(key);
      if (!v.defined() || it == x.floats.end()) continue;
      check(it->second.shape() == v.shape(), opt.input, ": ", key, " has shape ",
            shape_str(it->second.shape()), ", the output ", name, " has ", shape_str(v.shape()));
      const Var term = sum(mul(v, Var(it->second)));
      total = total.defined() ? add(total, term) : term;
    }
    check(total.defined(), opt.input, ": --grad needs an upstream gradient 'grad_output'");
    backward(total);
    for (const auto& [name, v] : in.vars)
      y.floats["grad." + name] = v.has_grad() ? v.grad() : zeros(v.shape());
    for (const auto& [name, p] : m.named_parameters())
      y.floats[name] = p.has_grad() ? p.grad() : zeros(p.shape());
  }
  save_safetensors(opt.output, y);
}

}  // namespace qkv::runner
