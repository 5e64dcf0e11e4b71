// Transformer layers and models: parity with torch.nn.TransformerEncoderLayer /
// TransformerDecoderLayer (post- and pre-norm, relu and gelu, batch-first and
// time-first) and a 2-layer TransformerEncoder with a final norm (values and
// gradients of inputs and every parameter, tests/fixtures/make_transformer.py);
// nn.Transformer's parameter names; KV-cached decoding equals recomputing the
// prefix (greedy, beam, LM generation); the Transformer and the LM learn a
// tiny copy task; the JSON makers and their errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/builder.h"
#include "nn/optim.h"
#include "nn/transformer.h"
#include "tests/nn/parity_utils.h"

namespace qkv {
namespace {

using test::GoldenCase;
using test::VarMap;

TransformerLayerOptions layer_options(const nlohmann::json& cfg) {
  TransformerLayerOptions o;
  o.d_model = cfg["d_model"];
  o.nhead = cfg["nhead"];
  o.dim_feedforward = cfg["dim_feedforward"];
  o.dropout = 0.f;
  o.activation =
      enum_parse<TransformerActivation>(cfg["activation"].get<std::string>(), "activation");
  o.norm_first = cfg["norm_first"];
  o.batch_first = cfg["batch_first"];
  return o;
}

void run_encoder_case(const std::string& file) {
  GoldenCase c = test::load_golden("transformer/" + file + ".safetensors");
  Generator gen(1);
  TransformerEncoderLayer m(layer_options(c.config), gen);
  IntTensor L = c.i("input.lengths");
  test::check_golden(c, m, [&] {
    return VarMap{{"out", m.forward(c.inputs.at("src"), {&L, Tensor(), true})}};
  });
}

void run_decoder_case(const std::string& file) {
  GoldenCase c = test::load_golden("transformer/" + file + ".safetensors");
  Generator gen(1);
  TransformerDecoderLayer m(layer_options(c.config), gen);
  IntTensor L = c.i("input.memory_lengths");
  test::check_golden(c, m, [&] {
    return VarMap{{"out", m.forward(c.inputs.at("tgt"), c.inputs.at("memory"), {nullptr, Tensor(), true},
                                    {&L, Tensor(), false})}};
  });
}

TransformerOptions tiny_options(float dropout = 0.f) {
  TransformerOptions o;
  o.src_vocab = 9, o.tgt_vocab = 11, o.d_model = 16, o.nhead = 2;
  o.num_encoder_layers = 2, o.num_decoder_layers = 2, o.dim_feedforward = 32;
  o.dropout = dropout, o.max_len = 32;
  return o;
}

// A random sequence of n ids in [3, vocab) (0, 1, 2 are pad, bos, eos).
std::vector<int32_t> random_ids(Generator& g, int64_t n, int64_t vocab) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(int32_t(3 + g.next_below(vocab - 3)));
  return v;
}

TEST_SUITE("nn/transformer") {
  TEST_CASE("encoder layer, post-norm relu, batch-first, causal + padding, matches torch") {
    run_encoder_case("encoder_layer_post_relu");
  }
  TEST_CASE("encoder layer, pre-norm gelu, matches torch") { run_encoder_case("encoder_layer_pre_gelu"); }
  TEST_CASE("encoder layer, post-norm gelu, time-first, matches torch") {
    run_encoder_case("encoder_layer_post_gelu_tf");
  }
  TEST_CASE("decoder layer, post-norm relu, causal + memory padding, matches torch") {
    run_decoder_case("decoder_layer_post_relu");
  }
  TEST_CASE("decoder layer, pre-norm gelu, matches torch") { run_decoder_case("decoder_layer_pre_gelu"); }
  TEST_CASE("decoder layer, post-norm gelu, time-first, matches torch") {
    run_decoder_case("decoder_layer_post_gelu_tf");
  }
  TEST_CASE("2-layer TransformerEncoder with a final norm matches torch") {
    GoldenCase c = test::load_golden("transformer/encoder_2layers.safetensors");
    Generator gen(1);
    TransformerEncoder m(layer_options(c.config), 2, true, gen);
    IntTensor L = c.i("input.lengths");
    test::check_golden(c, m, [&] {
      return VarMap{{"out", m.forward(c.inputs.at("src"), {&L, Tensor(), false})}};
    });
  }

  TEST_CASE("the seq2seq Transformer uses nn.Transformer's names under encoder.* and decoder.*") {
    Generator gen(2);
    Transformer t(tiny_options(), gen);
    std::map<std::string, Shape> ps;
    for (const auto& [n, p] : t.named_parameters()) ps[n] = p.shape();
    const std::map<std::string, Shape> want = {
        {"encoder.layers.0.self_attn.in_proj_weight", {48, 16}},
        {"encoder.layers.1.self_attn.out_proj.bias", {16}},
        {"encoder.layers.1.linear1.weight", {32, 16}},
        {"encoder.layers.0.norm2.bias", {16}},
        {"encoder.norm.weight", {16}},
        {"decoder.layers.1.multihead_attn.in_proj_bias", {48}},
        {"decoder.layers.0.norm3.weight", {16}},
        {"decoder.layers.1.linear2.weight", {16, 32}},
        {"decoder.norm.bias", {16}},
        {"src_embedding.weight", {9, 16}},
        {"tgt_embedding.weight", {11, 16}},
        {"out.weight", {11, 16}}};
    for (const auto& [n, s] : want) {
      INFO(n);
      REQUIRE(ps.count(n));
      CHECK(ps[n] == s);
    }
    // embeddings, 2 encoder layers x 12 tensors, norm, 2 decoder layers x 18, norm, out
    CHECK(ps.size() == 2 + 2 * 12 + 2 + 2 * 18 + 2 + 2);
    bool has_pe = false;
    for (const auto& [n, _] : t.named_buffers()) has_pe |= n == "positional.pe";
    CHECK(has_pe);
  }

  TEST_CASE("KV-cached greedy and beam decoding give exactly the tokens of recomputing the prefix") {
    Generator gen(3);
    Transformer t(tiny_options(), gen);
    t.eval();
    Generator data(4);
    for (int trial = 0; trial < 4; ++trial) {
      const std::vector<int32_t> src = random_ids(data, 3 + trial, 9);
      const IntTensor s = IntTensor::from({1, int64_t(src.size())}, src);
      const DecodeOptions o{t.bos_id(), t.eos_id(), {12}, {s.size(1)}};
      const IntTensor len = IntTensor::from({1}, {int32_t(s.size(1))});
      auto cached = t.start_decoding(s, len, 1, true), full = t.start_decoding(s, len, 1, false);
      Decoded a = greedy_decode(*cached, o)[0], b = greedy_decode(*full, o)[0];
      CHECK(a.tokens == b.tokens);
      CHECK(a.score == doctest::Approx(b.score).epsilon(1e-5));
      test::expect_close(a.head_attention, b.head_attention, 1e-5, "greedy head attention");
      CHECK(a.head_attention.shape() == Shape{2, int64_t(a.tokens.size()), s.size(1)});
      test::expect_close(a.attention, mean(Var(a.head_attention), {0}).value(), 1e-6, "head mean");
      Decoded viaapi = t.greedy(s, 12);
      CHECK(viaapi.tokens == a.tokens);
      for (int64_t K : {1, 3}) {
        auto bc = t.start_decoding(s, len, K, true), bf = t.start_decoding(s, len, K, false);
        Decoded x = beam_decode(*bc, o, K, 0.6f)[0], y = beam_decode(*bf, o, K, 0.6f)[0];
        CHECK(x.tokens == y.tokens);
        CHECK(x.score == doctest::Approx(y.score).epsilon(1e-5));
        if (K == 1) CHECK(x.tokens == a.tokens);
      }
    }
  }

  TEST_CASE("LM generation with the cache equals argmax over full causal forwards") {
    Generator gen(5);
    TransformerLMOptions o;
    o.vocab = 13, o.d_model = 16, o.nhead = 4, o.num_layers = 2, o.dim_feedforward = 24;
    o.max_len = 40, o.dropout = 0.f, o.norm_first = true, o.positional = PositionalKind::learned;
    TransformerLM lm(o, gen);
    lm.eval();
    const std::vector<int32_t> prefix = {3, 7, 1, 9};
    const std::vector<int32_t> got = lm.generate(prefix, 10);
    std::vector<int32_t> seq = prefix;
    NoGrad ng;
    for (int i = 0; i < 10; ++i) {
      Tensor lg = lm.forward(IntTensor::from({1, int64_t(seq.size())}, seq)).value();
      const float* last = lg.data() + (int64_t(seq.size()) - 1) * o.vocab;
      seq.push_back(int32_t(std::max_element(last, last + o.vocab) - last));
    }
    CHECK(got == std::vector<int32_t>(seq.begin() + 4, seq.end()));
    Generator s1(9), s2(9);
    CHECK(lm.generate(prefix, 6, 1.f, &s1) == lm.generate(prefix, 6, 1.f, &s2));
    CHECK(test::error_of([&] { lm.generate(prefix, 40); }).find("max_len") != std::string::npos);
  }

  TEST_CASE("the Transformer learns a tiny copy task (loss falls) and then decodes it") {
    Generator gen(6);
    TransformerOptions o = tiny_options(0.f);
    o.d_model = 32, o.nhead = 4, o.dim_feedforward = 64, o.num_encoder_layers = 1, o.num_decoder_layers = 1;
    Transformer t(o, gen);
    Adam opt(t.parameters(), 3e-3);
    Generator data(7);
    const int64_t B = 16, S = 5;
    float first = 0, last = 0;
    for (int it = 0; it < 150; ++it) {
      IntTensor src({B, S}), tin({B, S + 1}), tout({B, S + 1});
      for (int64_t b = 0; b < B; ++b) {
        const auto ids = random_ids(data, S, 9);
        tin.data()[b * (S + 1)] = o.bos;
        for (int64_t j = 0; j < S; ++j) {
          src.data()[b * S + j] = ids[size_t(j)];
          tin.data()[b * (S + 1) + j + 1] = ids[size_t(j)];
          tout.data()[b * (S + 1) + j] = ids[size_t(j)];
        }
        tout.data()[b * (S + 1) + S] = o.eos;
      }
      Var loss = t.loss(src, IntTensor::full({B}, int32_t(S)), tin, tout);
      if (it == 0) first = loss.item();
      last = loss.item();
      opt.zero_grad();
      backward(loss);
      opt.step();
    }
    MESSAGE("copy task loss ", first, " -> ", last);
    CHECK(last < 0.3f * first);
    t.eval();
    const IntTensor s = IntTensor::from({1, 5}, {3, 4, 5, 6, 7});
    Decoded d = t.beam(s, 3, 8);
    CHECK(d.tokens == std::vector<int32_t>{3, 4, 5, 6, 7, 2});
  }

  TEST_CASE("the TransformerLM learns to repeat its input (loss falls)") {
    Generator gen(8);
    TransformerLMOptions o;
    o.vocab = 10, o.d_model = 32, o.nhead = 4, o.num_layers = 2, o.dim_feedforward = 64;
    o.max_len = 16, o.dropout = 0.f;
    TransformerLM lm(o, gen);
    Adam opt(lm.parameters(), 3e-3);
    Generator data(9);
    const int64_t B = 16, H = 4;  // sequences a b c d a b c d: the second half is predictable
    float first = 0, last = 0;
    for (int it = 0; it < 150; ++it) {
      IntTensor ids({B, 2 * H}), tg({B, 2 * H});
      for (int64_t b = 0; b < B; ++b) {
        const auto v = random_ids(data, H, 10);
        for (int64_t j = 0; j < 2 * H; ++j) ids.data()[b * 2 * H + j] = v[size_t(j % H)];
        for (int64_t j = 0; j < 2 * H; ++j)  // only the copied half is scored
          tg.data()[b * 2 * H + j] = j >= H - 1 && j + 1 < 2 * H ? v[size_t((j + 1) % H)] : o.pad;
      }
      Var loss = lm.loss(ids, tg);
      if (it == 0) first = loss.item();
      last = loss.item();
      opt.zero_grad();
      backward(loss);
      opt.step();
    }
    MESSAGE("LM copy loss ", first, " -> ", last);
    CHECK(last < 0.3f * first);
    lm.eval();
    CHECK(lm.generate({5, 8, 3, 6, 5}, 3) == std::vector<int32_t>{8, 3, 6});
  }

  TEST_CASE("JSON makers build every transformer module; unknown keys and bad values name the path") {
    Generator g(10);
    Built mha = build_module(Json::parse(R"({"type": "multihead_attention", "embed_dim": 8, "num_heads": 2})"), g);
    CHECK(mha.module->named_parameters().size() == 4);
    CHECK(mha.resolved["batch_first"] == false);
    Built ln = build_module(Json::parse(R"({"type": "layer_norm", "normalized_shape": 6})"), g);
    CHECK(ln.module->num_parameters() == 12);
    Built el = build_module(Json::parse(
        R"({"type": "transformer_encoder_layer", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "norm_first": true})"), g);
    // attention 24x8 + 24 + 8x8 + 8, linear1 16x8 + 16, linear2 8x16 + 8, two norms 2 x 16
    CHECK(el.module->num_parameters() == 288 + 144 + 136 + 32);
    Built dl = build_module(Json::parse(
        R"({"type": "transformer_decoder_layer", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "activation": "gelu"})"), g);
    CHECK(dynamic_cast<TransformerDecoderLayer*>(dl.module.get()) != nullptr);
    Built enc = build_module(Json::parse(
        R"({"type": "transformer_encoder", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "num_layers": 2, "norm": true})"), g);
    CHECK(enc.module->state_dict().count("layers.1.norm2.weight") == 1);
    CHECK(enc.module->state_dict().count("norm.bias") == 1);
    Built tr = build_module(Json::parse(
        R"({"type": "transformer", "src_vocab": 9, "tgt_vocab": 11, "d_model": 16, "nhead": 2, "positional": "learned"})"), g);
    CHECK(tr.resolved["pad"] == 0);
    CHECK(tr.resolved["bos"] == 1);
    CHECK(tr.resolved["eos"] == 2);
    CHECK(tr.module->state_dict().count("positional.weight") == 1);
    Built lm = build_module(Json::parse(R"({"type": "transformer_lm", "vocab": 7, "d_model": 8, "nhead": 2})"), g);
    CHECK(dynamic_cast<TransformerLM*>(lm.module.get()) != nullptr);
    CHECK(lm.resolved["num_layers"] == 2);

    std::string e = test::error_of([&] {
      build_module(Json::parse(R"({"type": "transformer_lm", "vocab": 7, "d_model": 8, "nhead": 2, "layers": 3})"), g);
    });
    CHECK(e.find("model.layers") != std::string::npos);
    e = test::error_of([&] {
      build_module(Json::parse(R"({"type": "transformer", "src_vocab": 9, "tgt_vocab": 11, "activation": "swish"})"), g);
    });
    CHECK(e.find("model.activation") != std::string::npos);
    e = test::error_of([&] {
      build_module(Json::parse(R"({"type": "multihead_attention", "embed_dim": 10, "num_heads": 3})"), g);
    });
    CHECK(e.find("num_heads") != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv
