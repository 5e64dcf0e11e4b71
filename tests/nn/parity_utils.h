// Parity against PyTorch golden files (tests/fixtures/make_transformer.py's
// layout): load a case, load its param.* into a module strictly, compare
// outputs, run backward of sum(output * upstream), compare grad.input.* and
// grad.param.* within |got - want| <= 1e-5 + 1e-4 |want| (a failure reports maxdiff).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "nn/module.h"
#include "nn/safetensors.h"
#include "tests/test_utils.h"

namespace qkv::test {

using VarMap = std::map<std::string, Var>;

struct GoldenCase {
  std::string name;
  TensorFile file;
  nlohmann::json config;
  VarMap inputs;  // input.* floats except masks, as leaves requiring a gradient

  const Tensor& f(const std::string& n) const {
    auto it = file.floats.find(n);
    INFO(name, ": fixture tensor ", n);
    REQUIRE(it != file.floats.end());
    return it->second;
  }
  const IntTensor& i(const std::string& n) const {
    auto it = file.ints.find(n);
    INFO(name, ": fixture int tensor ", n);
    REQUIRE(it != file.ints.end());
    return it->second;
  }
  bool has(const std::string& n) const { return file.floats.count(n) || file.ints.count(n); }
  std::vector<std::string> under(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& [n, _] : file.floats)
      if (n.rfind(prefix, 0) == 0) out.push_back(n.substr(prefix.size()));
    return out;
  }
};

inline GoldenCase load_golden(const std::string& rel) {
  GoldenCase c;
  c.name = rel;
  c.file = load_safetensors(fixture_path(rel));
  auto it = c.file.metadata.find("config");
  REQUIRE_MESSAGE(it != c.file.metadata.end(), rel, ": no \"config\" metadata");
  c.config = nlohmann::json::parse(it->second);
  for (const auto& n : c.under("input."))
    if (n != "attn_mask") c.inputs[n] = Var(c.f("input." + n).clone(), true);
  return c;
}

inline void expect_parity(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what, ": shapes ", shape_str(got.shape()), " vs ", shape_str(want.shape()));
  REQUIRE(got.shape() == want.shape());
  double max_abs = 0;
  int64_t bad = 0, worst = -1;
  for (int64_t k = 0; k < got.numel(); ++k) {
    const double a = got.data()[k], b = want.data()[k];
    const double d = std::isnan(a) || std::isnan(b) ? INFINITY : std::fabs(a - b);
    if (d > max_abs) max_abs = d, worst = k;
    if (!(d <= 1e-5 + 1e-4 * std::fabs(b))) ++bad;
  }
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", got.numel(), " elements off, max_abs ", max_abs,
                " at ", worst);
}

// Runs `forward` (output name -> Var) against the golden case; see the file comment.
inline void check_golden(GoldenCase& c, Module& m, const std::function<VarMap()>& forward) {
  std::map<std::string, Tensor> params;
  for (const auto& n : c.under("param.")) params[n] = c.f("param." + n);
  m.load_state_dict(params, /*strict=*/true);
  VarMap out = forward();
  Var loss;
  const auto want = c.under("output.");
  CHECK_MESSAGE(want.size() == out.size(), c.name, ": fixture has ", want.size(), " outputs, got ",
                out.size());
  for (const auto& o : want) {
    auto it = out.find(o);
    REQUIRE_MESSAGE((it != out.end() && it->second.defined()), c.name, ": no output ", o);
    expect_parity(it->second.value(), c.f("output." + o), c.name + " output." + o);
    Var term = sum(mul(it->second, Var(c.f("upstream." + o))));
    loss = loss.defined() ? add(loss, term) : term;
  }
  backward(loss);
  for (const auto& n : c.under("grad.input.")) {
    auto it = c.inputs.find(n);
    REQUIRE(it != c.inputs.end());
    REQUIRE_MESSAGE(it->second.has_grad(), c.name, ": no gradient reached input ", n);
    expect_parity(it->second.grad(), c.f("grad.input." + n), c.name + " grad.input." + n);
  }
  const auto named = m.named_parameters();
  std::map<std::string, Var> pmap(named.begin(), named.end());
  for (const auto& n : c.under("grad.param.")) {
    auto it = pmap.find(n);
    REQUIRE_MESSAGE(it != pmap.end(), c.name, ": module has no parameter ", n);
    REQUIRE_MESSAGE(it->second.has_grad(), c.name, ": no gradient reached ", n);
    expect_parity(it->second.grad(), c.f("grad.param." + n), c.name + " grad.param." + n);
  }
  CHECK(c.under("grad.param.").size() == named.size());
}

}  // namespace qkv::test
