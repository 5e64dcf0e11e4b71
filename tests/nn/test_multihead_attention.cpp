// MultiheadAttention and LayerNorm: parity with torch.nn.MultiheadAttention
// (tests/fixtures/make_transformer.py: self and cross, key padding, causal and
// float masks, per-head and averaged weights, separate kdim/vdim projections,
// time-first) on values and the gradients of inputs and every parameter; the
// parameter names and shapes; the KV-cache step against the full forward.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/layernorm.h"
#include "nn/multihead_attention.h"
#include "tests/nn/parity_utils.h"

namespace qkv {
namespace {

using test::GoldenCase;
using test::VarMap;

void run_mha_case(const std::string& file) {
  GoldenCase c = test::load_golden("transformer/" + file + ".safetensors");
  const auto& cfg = c.config;
  MultiheadAttentionOptions o;
  o.embed_dim = cfg["embed_dim"];
  o.num_heads = cfg["num_heads"];
  o.batch_first = cfg["batch_first"];
  o.kdim = cfg.value("kdim", 0);
  o.vdim = cfg.value("vdim", 0);
  Generator gen(1);
  MultiheadAttention m(o, gen);
  IntTensor lengths = c.has("input.lengths") ? c.i("input.lengths") : IntTensor();
  check_golden(c, m, [&] {
    AttentionMasks masks;
    if (lengths.defined()) masks.key_lengths = &lengths;
    if (cfg.value("mask", false)) masks.attn_mask = c.f("input.attn_mask");
    masks.causal = cfg.value("causal", false);
    const Var q = c.inputs.at("query");
    const bool self = cfg["self"];
    const Var k = self ? q : c.inputs.at("key");
    const Var v = self ? q : cfg.value("memory", false) ? k : c.inputs.at("value");
    MultiheadAttentionOutput r = m.forward(q, k, v, masks, true, cfg["average"]);
    return VarMap{{"out", r.output}, {"weights", r.weights}};
  });
}

TEST_SUITE("nn/multihead_attention") {
  TEST_CASE("self-attention with key padding, averaged weights, matches torch") {
    run_mha_case("mha_self_padding");
  }
  TEST_CASE("causal self-attention with per-head weights matches torch") {
    run_mha_case("mha_self_causal");
  }
  TEST_CASE("cross-attention with kdim/vdim (separate projections), float mask and padding matches torch") {
    run_mha_case("mha_cross_kvdim");
  }
  TEST_CASE("time-first cross-attention over a memory with a [B*NH,T,S] mask matches torch") {
    run_mha_case("mha_cross_timefirst");
  }

  TEST_CASE("parameter names and shapes are PyTorch's") {
    Generator gen(3);
    MultiheadAttention packed({8, 2}, gen);
    std::map<std::string, Shape> want = {{"in_proj_weight", {24, 8}}, {"in_proj_bias", {24}},
                                         {"out_proj.weight", {8, 8}}, {"out_proj.bias", {8}}};
    for (const auto& [n, p] : packed.named_parameters()) CHECK(want.at(n) == p.shape());
    CHECK(packed.named_parameters().size() == want.size());
    MultiheadAttentionOptions o{8, 2, 0.f, false, 6, 4};
    MultiheadAttention sep(o, gen);
    std::map<std::string, Shape> want2 = {{"q_proj_weight", {8, 8}}, {"k_proj_weight", {8, 6}},
                                          {"v_proj_weight", {8, 4}}, {"out_proj.weight", {8, 8}}};
    for (const auto& [n, p] : sep.named_parameters()) CHECK(want2.at(n) == p.shape());
    CHECK(sep.named_parameters().size() == want2.size());
    CHECK(test::error_of([&] { MultiheadAttention bad({10, 3}, gen); }).find("num_heads") !=
          std::string::npos);
  }

  TEST_CASE("cached steps equal the causal full forward; cross steps equal the full cross forward") {
    Generator gen(5);
    MultiheadAttention m({8, 2, 0.f, true, 0, 0, true}, gen);
    m.eval();
    Tensor x = test::rand_tensor({3, 6, 8}, 7), mem = test::rand_tensor({3, 4, 8}, 8);
    NoGrad ng;
    Var xv(x);
    Tensor full = m.attend(xv, xv, xv, {nullptr, Tensor(), true}, false).output.value();
    IntTensor L = IntTensor::from({3}, {4, 2, 3});
    Var mv(mem);
    MultiheadAttentionOutput cr = m.attend(xv, mv, mv, {&L, Tensor(), false}, true, false);
    KVCache cache;
    KVCache pm = m.project_memory(mem);
    for (int64_t t = 0; t < 6; ++t) {
      Tensor xt = slice(x, 1, t, t + 1).reshape({3, 8});
      Tensor y = m.step_self(xt, cache);
      Tensor want = slice(full, 1, t, t + 1).reshape({3, 8});
      test::expect_close(y, want, 1e-5, "self step " + std::to_string(t));
      Tensor w;
      Tensor yc = m.step_cross(xt, pm, &L, &w);
      test::expect_close(yc, slice(cr.output.value(), 1, t, t + 1).reshape({3, 8}), 1e-5, "cross step");
      test::expect_close(w, slice(cr.weights.value(), 2, t, t + 1).reshape({3, 2, 4}), 1e-5,
                         "cross weights");
    }
    CHECK(cache.len == 6);
  }
}

TEST_SUITE("nn/layernorm") {
  TEST_CASE("LayerNorm module: names, ones/zeros init, normalises the last axis, no-affine form") {
    LayerNorm ln({5});
    auto ps = ln.named_parameters();
    REQUIRE(ps.size() == 2);
    CHECK(ps[0].first == "weight");
    CHECK(ps[1].first == "bias");
    ln.weight.value_mut().copy_from(Tensor::from({5}, {1, 2, 3, 4, 5}));
    ln.bias.value_mut().copy_from(Tensor::from({5}, {0, 0, 1, 0, 0}));
    Tensor y = ln.forward(Var(Tensor::from({1, 5}, {1, 2, 3, 4, 5}))).value();
    const float r = 1.f / std::sqrt(2.f + 1e-5f);  // var = 2
    const float want[5] = {-2 * r, -2 * r, 1.f, 4 * r, 10 * r};
    for (int i = 0; i < 5; ++i) CHECK(y.data()[i] == doctest::Approx(want[i]).epsilon(1e-5));
    LayerNorm plain({5, 1e-5f, false});
    CHECK(plain.named_parameters().empty());
    CHECK(test::error_of([&] { ln.forward(Var(Tensor::zeros({2, 4}))); }).find("LayerNorm") !=
          std::string::npos);
  }
}

}  // namespace
}  // namespace qkv
