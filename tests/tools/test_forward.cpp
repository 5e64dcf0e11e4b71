// `qkv forward` held against PyTorch (tests/fixtures/make_forward.py): every
// case in tests/fixtures/forward runs through run_forward with --grad, and
// every output, input gradient and parameter gradient must match the golden
// file elementwise within |got - want| <= 1e-4 max(1, |want|). Every module
// type the builder knows must have a case, so a new type cannot slip past.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "nn/builder.h"
#include "nn/safetensors.h"
#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/runner/forward.h"

namespace qkv::test {
namespace {

namespace fs = std::filesystem;

struct Case {
  std::string name, dir;
  std::string file(const std::string& ext) const { return dir + "/" + name + ext; }
};

std::vector<Case> forward_cases() {
  std::vector<Case> out;
  const std::string dir = fixture_path("forward");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json") out.push_back({e.path().stem().string(), dir});
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
  return out;
}

std::string module_type(const std::string& json_path) {
  std::ifstream in(json_path);
  return nlohmann::json::parse(in).at("type").get<std::string>();
}

// The largest |a - b| / max(1, |b|) over two tensors of one shape (NaN: infinity).
double max_rel_error(const Tensor& got, const Tensor& want) {
  double worst = 0;
  for (int64_t k = 0; k < want.numel(); ++k) {
    const double a = got.data()[k], b = want.data()[k];
    const double e = std::fabs(a - b) / std::max(1.0, std::fabs(b));
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  return worst;
}

runner::ForwardOptions options(const Case& c, const std::string& out, bool grad) {
  runner::ForwardOptions o;
  o.module_json = c.file(".json");
  o.weights = c.file(".weights.safetensors");
  o.input = c.file(".input.safetensors");
  o.output = out;
  o.grad = grad;
  return o;
}

// Runs one case with --grad; returns its largest error (CHECKs each tensor).
double run_case(const Case& c, const TempDir& tmp) {
  INFO("forward case ", c.name);
  const std::string out = tmp / (c.name + ".out.safetensors");
  REQUIRE_NOTHROW(runner::run_forward(options(c, out, true)));
  const TensorFile got = load_safetensors(out),
                   want = load_safetensors(c.file(".expected.safetensors"));
  std::set<std::string> got_names, want_names;
  for (const auto& [n, _] : got.floats) got_names.insert(n);
  for (const auto& [n, _] : want.floats) want_names.insert(n);
  CHECK(got_names == want_names);
  double worst = 0;
  for (const auto& [name, w] : want.floats) {
    auto it = got.floats.find(name);
    if (it == got.floats.end()) continue;
    INFO(c.name, ": ", name, " shapes ", shape_str(it->second.shape()), " vs ",
         shape_str(w.shape()));
    REQUIRE(it->second.shape() == w.shape());
    const double e = max_rel_error(it->second, w);
    CHECK_MESSAGE(e <= 1e-4, c.name, ": ", name, " max relative error ", e);
    worst = std::max(worst, e);
  }
  return worst;
}

}  // namespace

TEST_CASE(
    "forward: every module type reproduces PyTorch (outputs, input and parameter gradients)") {
  TempDir tmp;
  std::map<std::string, std::pair<int, double>> by_type;  // type -> (cases, largest error)
  for (const Case& c : forward_cases()) {
    const double e = run_case(c, tmp);
    auto& [n, worst] = by_type[module_type(c.file(".json"))];
    ++n;
    worst = std::max(worst, e);
  }
  std::printf("qkv forward vs PyTorch, largest |got - want| / max(1, |want|) per module type:\n");
  for (const auto& [type, r] : by_type)
    std::printf("  %-26s %2d case%s  %.1e\n", type.c_str(), r.first, r.first == 1 ? " " : "s",
                r.second);
  for (const auto& type : module_types())
    CHECK_MESSAGE(by_type.count(type), "module type '", type,
                  "' has no case in tests/fixtures/forward (add one to make_forward.py)");
}

TEST_CASE("forward: without --grad only the outputs are written") {
  TempDir tmp;
  const Case c{"bilstm", fixture_path("forward")};
  runner::run_forward(options(c, tmp / "y.safetensors", false));
  const TensorFile y = load_safetensors(tmp / "y.safetensors");
  std::vector<std::string> names;
  for (const auto& [n, _] : y.floats) names.push_back(n);
  CHECK(names == std::vector<std::string>{"c_n", "h_n", "output"});
}

TEST_CASE("forward: inputs nobody reads and upstreams of no output are errors") {
  TempDir tmp;
  const Case mlp{"mlp", fixture_path("forward")};
  TensorFile x = load_safetensors(mlp.file(".input.safetensors"));
  x.floats["h0"] = x.floats.at("input");  // a sequential has no state
  save_safetensors(tmp / "x.safetensors", x);
  runner::ForwardOptions o = options(mlp, tmp / "y.safetensors", true);
  o.input = tmp / "x.safetensors";
  CHECK_THROWS_WITH_AS(runner::run_forward(o),
                       doctest::Contains("'h0' is not an input of Sequential"), Error);
  x.floats.erase("h0");
  x.floats["grad_h_n"] = x.floats.at("input");
  save_safetensors(tmp / "x.safetensors", x);
  CHECK_THROWS_WITH_AS(runner::run_forward(o),
                       doctest::Contains("upstream 'grad_h_n' matches no output"), Error);

  // A whole model's attention map is for inspection: an upstream for it is refused.
  const Case s2s{"seq2seq_luong_dot", fixture_path("forward")};
  TensorFile xs = load_safetensors(s2s.file(".input.safetensors"));
  const TensorFile want = load_safetensors(s2s.file(".expected.safetensors"));
  xs.floats["grad_attention"] = want.floats.at("attention");
  save_safetensors(tmp / "xs.safetensors", xs);
  runner::ForwardOptions os = options(s2s, tmp / "y.safetensors", true);
  os.input = tmp / "xs.safetensors";
  CHECK_THROWS_WITH_AS(runner::run_forward(os),
                       doctest::Contains("output attention carries no gradient"), Error);
}

namespace {
struct NoNamedForward : Module {
  std::string describe() const override { return "NoNamedForward"; }
};
}  // namespace

TEST_CASE("forward: a module without a named forward says so") {
  NoNamedForward m;
  NamedInputs in({}, {}, "x.safetensors");
  CHECK_THROWS_WITH_AS(m.forward_named(in), "forward: NoNamedForward has no named forward", Error);
}

}  // namespace qkv::test
