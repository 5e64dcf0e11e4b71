// Linear, Embedding, LSTM, GRU, LSTMCell and GRUCell against torch 1.13
// (fixtures from tests/fixtures/make_nn.py, one safetensors file per case):
// each module is built from the case's config, loads torch's state_dict
// strictly, runs forward on the same inputs, then backward of
// L = sum over outputs of sum(output * upstream). Every output, input gradient
// and parameter gradient must match within |got - want| <= 1e-5 + 1e-4 |want|.
// Cases with lengths also check that outputs at padded steps, and the input
// gradient there, are exactly zero.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/rnn.h"
#include "nn/safetensors.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using json = nlohmann::json;
using VarMap = std::map<std::string, Var>;

constexpr double kRtol = 1e-4, kAtol = 1e-5;

std::string fixture(const std::string& name) { return test::fixture_path("nn/" + name); }

const Tensor& get(const TensorFile& f, const std::string& name) {
  auto it = f.floats.find(name);
  INFO("fixture tensor ", name);
  REQUIRE(it != f.floats.end());
  return it->second;
}

const IntTensor& get_int(const TensorFile& f, const std::string& name) {
  auto it = f.ints.find(name);
  INFO("fixture int tensor ", name);
  REQUIRE(it != f.ints.end());
  return it->second;
}

// Names in `f` under `prefix`, prefix stripped.
std::vector<std::string> names_under(const TensorFile& f, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& [n, _] : f.floats)
    if (n.rfind(prefix, 0) == 0) out.push_back(n.substr(prefix.size()));
  return out;
}

// got ~ want with an allclose-style tolerance; on failure reports the max
// absolute and relative differences and the worst element.
void expect_parity(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what, ": shapes ", shape_str(got.shape()), " vs ", shape_str(want.shape()));
  REQUIRE(got.shape() == want.shape());
  double max_abs = 0, max_rel = 0, worst_excess = 0;
  int64_t worst = -1, bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    double a = got.data()[i], b = want.data()[i];
    double d = std::fabs(a - b);
    if (std::isnan(a) || std::isnan(b)) d = INFINITY;
    max_abs = std::max(max_abs, d);
    if (b != 0) max_rel = std::max(max_rel, d / std::fabs(b));
    double excess = d - (kAtol + kRtol * std::fabs(b));
    if (!(excess <= 0)) {
      ++bad;
      if (worst < 0 || excess > worst_excess) worst = i, worst_excess = excess;
    }
  }
  char msg[256];
  std::snprintf(msg, sizeof msg, "%s: %lld of %lld elements off; max_abs=%.3g max_rel=%.3g",
                what.c_str(), (long long)bad, (long long)got.numel(), max_abs, max_rel);
  std::string m = msg;
  if (worst >= 0)
    m += " worst at " + std::to_string(worst) + ": got " + std::to_string(got.data()[worst]) +
         " want " + std::to_string(want.data()[worst]);
  CHECK_MESSAGE(bad == 0, m);
}

// The gradient a Var received (zeros when none reached it).
Tensor grad_of(const Var& v) { return v.has_grad() ? v.grad() : zeros(v.shape()); }

struct Case {
  TensorFile file;
  json config;
  VarMap inputs;  // input.* floats, as leaves requiring a gradient
};

Case load_case(const std::string& name) {
  Case c;
  c.file = load_safetensors(fixture(name + ".safetensors"));
  auto it = c.file.metadata.find("config");
  REQUIRE_MESSAGE(it != c.file.metadata.end(), name, ": no \"config\" metadata");
  c.config = json::parse(it->second);
  for (const auto& n : names_under(c.file, "input."))
    c.inputs[n] = Var(get(c.file, "input." + n).clone(), true);
  return c;
}

Var input_or_none(const Case& c, const std::string& name) {
  auto it = c.inputs.find(name);
  return it == c.inputs.end() ? Var() : it->second;
}

// Loads param.* strictly, runs `forward`, compares outputs, runs backward of
// sum over outputs of sum(output * upstream), compares every gradient the
// fixture holds (grad.<input> and grad.param.<name>). Returns the outputs.
VarMap check_case(const std::string& name, Case& c, Module& m,
                  const std::function<VarMap()>& forward) {
  std::map<std::string, Tensor> params;
  for (const auto& n : names_under(c.file, "param.")) params[n] = get(c.file, "param." + n);
  m.load_state_dict(params, /*strict=*/true);

  VarMap out = forward();
  std::vector<std::string> want_outputs = names_under(c.file, "output.");
  CHECK_MESSAGE(want_outputs.size() == out.size(), name, ": fixture has ", want_outputs.size(),
                " outputs, module gave ", out.size());
  Var loss;
  for (const auto& o : want_outputs) {
    auto it = out.find(o);
    REQUIRE_MESSAGE(it != out.end(), name, ": module gave no output ", o);
    REQUIRE_MESSAGE(it->second.defined(), name, ": output ", o, " undefined");
    expect_parity(it->second.value(), get(c.file, "output." + o), name + " output." + o);
    Var term = sum(mul(it->second, Var(get(c.file, "upstream." + o))));
    loss = loss.defined() ? add(loss, term) : term;
  }
  backward(loss);

  for (const auto& n : names_under(c.file, "grad.")) {
    if (n.rfind("param.", 0) == 0) continue;
    auto it = c.inputs.find(n);
    REQUIRE_MESSAGE(it != c.inputs.end(), name, ": fixture has grad.", n, " but no input.", n);
    expect_parity(grad_of(it->second), get(c.file, "grad." + n), name + " grad." + n);
  }
  auto named = m.named_parameters();
  CHECK_MESSAGE(names_under(c.file, "grad.param.").size() == named.size(), name,
                ": fixture and module differ in parameter count");
  for (const auto& [pn, p] : named)
    expect_parity(grad_of(p), get(c.file, "grad.param." + pn), name + " grad.param." + pn);
  return out;
}

// ---- Linear, Embedding -------------------------------------------------------------

void linear_case(const std::string& name) {
  Case c = load_case(name);
  REQUIRE(c.config.at("type") == "Linear");
  LinearOptions opt;
  opt.in_features = c.config.at("in_features");
  opt.out_features = c.config.at("out_features");
  opt.bias = c.config.at("bias");
  Generator gen(5);
  Linear m(opt, gen);
  check_case(name, c, m, [&] { return VarMap{{"output", m(c.inputs.at("x"))}}; });
}

TEST_SUITE("nn/parity") {
  TEST_CASE("Linear matches torch (2-D input, bias)") { linear_case("linear"); }
  TEST_CASE("Linear matches torch (3-D input, no bias)") { linear_case("linear_nobias"); }

  TEST_CASE("Embedding with padding_idx matches torch") {
    const std::string name = "embedding_pad";
    Case c = load_case(name);
    REQUIRE(c.config.at("type") == "Embedding");
    EmbeddingOptions opt;
    opt.num_embeddings = c.config.at("num_embeddings");
    opt.embedding_dim = c.config.at("embedding_dim");
    opt.padding_idx = c.config.at("padding_idx");
    Generator gen(5);
    Embedding m(opt, gen);
    const IntTensor& ids = get_int(c.file, "input.ids");
    check_case(name, c, m, [&] { return VarMap{{"output", m.forward(ids)}}; });
    // The padding row gets exactly no gradient (the ids use it several times).
    const Tensor& g = m.weight.grad();
    for (int64_t j = 0; j < opt.embedding_dim; ++j)
      CHECK(g.data()[opt.padding_idx * opt.embedding_dim + j] == 0.f);
  }
}

// ---- LSTM, GRU ---------------------------------------------------------------------

// Every element at a padded step (t >= lengths[b]) of t ([T,B,F], or [B,T,F]
// batch_first) is exactly zero.
void expect_padding_zero(const Tensor& t, const IntTensor& lengths, bool batch_first,
                         const std::string& what) {
  REQUIRE(t.dim() == 3);
  int64_t T = t.size(batch_first ? 1 : 0), B = t.size(batch_first ? 0 : 1), F = t.size(2);
  REQUIRE(lengths.numel() == B);
  int64_t nonzero = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = lengths.data()[b]; s < T; ++s)
      for (int64_t j = 0; j < F; ++j) {
        int64_t i = batch_first ? (b * T + s) * F + j : (s * B + b) * F + j;
        if (t.data()[i] != 0.f) ++nonzero;
      }
  CHECK_MESSAGE(nonzero == 0, what, ": ", nonzero, " nonzero elements at padded steps");
}

void rnn_case(const std::string& name) {
  Case c = load_case(name);
  const json& cfg = c.config;
  std::string type = cfg.at("type");
  REQUIRE((type == "LSTM" || type == "GRU"));
  RNNOptions opt;
  opt.input_size = cfg.at("input_size");
  opt.hidden_size = cfg.at("hidden_size");
  opt.num_layers = cfg.at("num_layers");
  opt.bias = cfg.at("bias");
  opt.batch_first = cfg.at("batch_first");
  opt.dropout = cfg.at("dropout");
  opt.bidirectional = cfg.at("bidirectional");
  Generator gen(5);
  std::unique_ptr<RNNBase> m;
  if (type == "LSTM")
    m = std::make_unique<LSTM>(opt, gen);
  else
    m = std::make_unique<GRU>(opt, gen);

  auto lit = c.file.ints.find("input.lengths");
  const IntTensor* lengths = lit == c.file.ints.end() ? nullptr : &lit->second;
  VarMap out = check_case(name, c, *m, [&] {
    RNNOutput r = m->forward(c.inputs.at("x"), lengths, input_or_none(c, "h0"),
                             input_or_none(c, "c0"));
    VarMap o{{"output", r.output}, {"h_n", r.h_n}};
    if (type == "LSTM") o["c_n"] = r.c_n;
    return o;
  });
  if (lengths) {
    expect_padding_zero(out.at("output").value(), *lengths, opt.batch_first,
                        name + " output");
    expect_padding_zero(grad_of(c.inputs.at("x")), *lengths, opt.batch_first,
                        name + " grad.x");
  }
}

TEST_SUITE("nn/parity") {
  TEST_CASE("LSTM matches torch: 1 layer") { rnn_case("lstm_1l"); }
  TEST_CASE("LSTM matches torch: 2 layers, bidirectional, lengths, h0/c0") {
    rnn_case("lstm_2l_bi_lengths");
  }
  TEST_CASE("LSTM matches torch: batch_first, lengths") { rnn_case("lstm_bf_lengths"); }
  TEST_CASE("GRU matches torch: 1 layer") { rnn_case("gru_1l"); }
  TEST_CASE("GRU matches torch: 2 layers, bidirectional, lengths, batch_first, h0") {
    rnn_case("gru_2l_bi_lengths_bf");
  }

  // ---- LSTMCell, GRUCell ---------------------------------------------------------------

  TEST_CASE("LSTMCell matches torch") {
    const std::string name = "lstmcell";
    Case c = load_case(name);
    REQUIRE(c.config.at("type") == "LSTMCell");
    Generator gen(5);
    LSTMCell m(c.config.at("input_size"), c.config.at("hidden_size"), gen,
               c.config.at("bias").get<bool>());
    check_case(name, c, m, [&] {
      CellState s = m.forward(c.inputs.at("x"), CellState{c.inputs.at("h0"), c.inputs.at("c0")});
      return VarMap{{"h", s.h}, {"c", s.c}};
    });
  }

  TEST_CASE("GRUCell matches torch") {
    const std::string name = "grucell";
    Case c = load_case(name);
    REQUIRE(c.config.at("type") == "GRUCell");
    Generator gen(5);
    GRUCell m(c.config.at("input_size"), c.config.at("hidden_size"), gen,
              c.config.at("bias").get<bool>());
    check_case(name, c, m, [&] {
      return VarMap{{"h", m.forward(c.inputs.at("x"), c.inputs.at("h0"))}};
    });
  }
}

}  // namespace
}  // namespace qkv
