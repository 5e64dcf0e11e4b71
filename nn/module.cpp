#include "nn/module.h"

#include <set>

namespace qkv {

Var Module::register_parameter(std::string name, Tensor value) {
  for (const auto& [n, _] : params_) check(n != name, "module: parameter '", name, "' registered twice");
  Var v(std::move(value), true);
  v.set_name(name);
  params_.emplace_back(std::move(name), v);
  return v;
}

void Module::register_buffer(std::string name, Tensor value) {
  buffers_.emplace_back(std::move(name), std::move(value));
}

void Module::register_int_buffer(std::string name, IntTensor value) {
  int_buffers_.emplace_back(std::move(name), std::move(value));
}

void Module::add_child(std::string name, std::shared_ptr<Module> m) {
  check(m != nullptr, "module: child '", name, "' is null");
  for (const auto& [n, _] : children_) check(n != name, "module: child '", name, "' registered twice");
  children_.emplace_back(std::move(name), std::move(m));
}

void Module::collect(const std::string& prefix,
                     std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [n, v] : params_) out.emplace_back(prefix + n, v);
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out);
}

void Module::collect_buffers(const std::string& prefix,
                             std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_) c->collect_buffers(prefix + n + ".", out);
}

void Module::collect_int_buffers(const std::string& prefix,
                                 std::vector<std::pair<std::string, IntTensor>>& out) const {
  for (const auto& [n, t] : int_buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_) c->collect_int_buffers(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  collect("", out);
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& [_, v] : named_parameters()) out.push_back(v);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_buffers("", out);
  return out;
}

std::vector<std::pair<std::string, IntTensor>> Module::named_int_buffers() const {
  std::vector<std::pair<std::string, IntTensor>> out;
  collect_int_buffers("", out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [_, v] : named_parameters()) n += v.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  on_train(on);
  for (auto& [_, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (Var v : parameters()) v.zero_grad();
}

void Module::summary_lines(const std::string& name, int depth, std::string& out) const {
  int64_t own = 0;
  for (const auto& [_, v] : params_) own += v.numel();
  out += std::string(2 * depth, ' ') + (name.empty() ? "" : name + ": ") + describe();
  out += "  [" + std::to_string(num_parameters()) + " params";
  if (!children_.empty() && own) out += ", " + std::to_string(own) + " own";
  out += "]\n";
  for (const auto& [n, c] : children_) c->summary_lines(n, depth + 1, out);
}

std::string Module::summary() const {
  std::string out;
  summary_lines("", 0, out);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const auto& [n, v] : named_parameters()) out[n] = v.value();
  for (const auto& [n, t] : named_buffers()) out[n] = t;
  return out;
}

std::map<std::string, IntTensor> Module::int_state_dict() const {
  std::map<std::string, IntTensor> out;
  for (const auto& [n, t] : named_int_buffers()) out[n] = t;
  return out;
}

namespace {

// An integer buffer's source: the int tensor of its name, else a float one
// holding whole numbers (converted), else undefined.
IntTensor int_source(const std::string& name, const std::map<std::string, Tensor>& tensors,
                     const std::map<std::string, IntTensor>& ints, std::string& bad) {
  if (auto it = ints.find(name); it != ints.end()) return it->second;
  auto it = tensors.find(name);
  if (it == tensors.end()) return IntTensor();
  IntTensor out(it->second.shape());
  for (int64_t i = 0; i < out.numel(); ++i) {
    const float v = it->second.data()[i];
    if (v != float(int32_t(v))) bad = name + ": file holds " + std::to_string(v) + ", not an integer";
    out.data()[i] = int32_t(v);
  }
  return out;
}

}  // namespace

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& tensors,
                                   const std::map<std::string, IntTensor>& ints, bool strict) {
  // Destinations: parameters' values and buffers, by name.
  std::vector<std::pair<std::string, Tensor>> dst;
  for (auto& [n, v] : named_parameters()) dst.emplace_back(n, v.value());
  for (auto& [n, t] : named_buffers()) dst.emplace_back(n, t);

  LoadReport r;
  std::set<std::string> known;
  for (const auto& [n, t] : dst) {
    known.insert(n);
    auto it = tensors.find(n);
    if (it == tensors.end()) {
      r.missing.push_back(n);
    } else if (it->second.shape() != t.shape()) {
      r.mismatched.push_back(n + ": file " + shape_str(it->second.shape()) + " vs module " +
                             shape_str(t.shape()));
    }
  }
  std::vector<std::pair<IntTensor, IntTensor>> int_copies;  // (destination, source)
  for (const auto& [n, t] : named_int_buffers()) {
    known.insert(n);
    std::string bad;
    IntTensor src = int_source(n, tensors, ints, bad);
    if (!src.defined())
      r.missing.push_back(n);
    else if (src.shape() != t.shape())
      r.mismatched.push_back(n + ": file " + shape_str(src.shape()) + " vs module " +
                             shape_str(t.shape()));
    else if (!bad.empty())
      r.mismatched.push_back(bad);
    else
      int_copies.emplace_back(t, src);
  }
  for (const auto& [n, _] : tensors)
    if (!known.count(n)) r.unexpected.push_back(n);
  for (const auto& [n, _] : ints)
    if (!known.count(n)) r.unexpected.push_back(n);

  if (strict && !r.ok()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    std::string msg = "load_state_dict:";
    if (!r.missing.empty()) msg += " missing [" + list(r.missing) + "]";
    if (!r.unexpected.empty()) msg += " unexpected [" + list(r.unexpected) + "]";
    if (!r.mismatched.empty()) msg += " mis-shaped [" + list(r.mismatched) + "]";
    throw Error(msg);
  }
  for (auto& [n, t] : dst) {
    auto it = tensors.find(n);
    if (it != tensors.end() && it->second.shape() == t.shape()) t.copy_from(it->second);
  }
  for (auto& [dst_t, src] : int_copies) dst_t.copy_from(src);
  return r;
}

// ---- named forward ----------------------------------------------------------------

NamedOutputs Module::forward_named(NamedInputs&) {
  fail("forward: ", describe(), " has no named forward");
}

NamedOutputs UnaryModule::forward_named(NamedInputs& in) {
  return {{"output", forward(in.tensor("input"))}};
}

}  // namespace qkv
