// Modules built from JSON: PyTorch names come out of the right types, the
// resolved config carries every default, and config mistakes name their path.
#include <algorithm>

#include "engine/rng.h"
#include "nn/builder.h"
#include "nn/rnn.h"
#include "nn/seq2seq.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

TEST_SUITE("nn/builder") {
  TEST_CASE("a sequential MLP and an LSTM from JSON, with resolved defaults") {
    Generator g(1);
    Built mlp = build_module(Json::parse(R"({"type": "sequential", "layers": [
        {"type": "linear", "in_features": 4, "out_features": 8},
        {"type": "relu"},
        {"type": "dropout", "p": 0.1},
        {"type": "linear", "in_features": 8, "out_features": 2, "bias": false}]})"), g);
    std::vector<std::string> names;
    for (auto& [n, _] : mlp.module->named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight"});
    CHECK(mlp.resolved["layers"][0]["bias"] == true);  // default filled in
    CHECK(mlp.resolved["layers"][3]["bias"] == false);

    Built lstm = build_module(Json::parse(
        R"({"type": "lstm", "input_size": 3, "hidden_size": 5, "bidirectional": true})"), g);
    auto* l = dynamic_cast<LSTM*>(lstm.module.get());
    REQUIRE(l != nullptr);
    CHECK(l->options.bidirectional);
    CHECK(lstm.resolved.dump() ==
          R"({"type":"lstm","input_size":3,"hidden_size":5,"num_layers":1,"bias":true,)"
          R"("batch_first":false,"dropout":0.0,"bidirectional":true})");
    // The resolved config builds the same module again.
    Built again = build_module(lstm.resolved, g);
    CHECK(again.resolved == lstm.resolved);
  }

  TEST_CASE("attention and the attention-pooled classifier from JSON") {
    Generator g(3);
    Built a = build_module(Json::parse(
        R"({"type": "attention", "score": "additive", "query_size": 6, "key_size": 8})"), g);
    std::vector<std::string> names;
    for (auto& [n, _] : a.module->named_parameters()) names.push_back(n);
    CHECK(std::find(names.begin(), names.end(), "U.weight") != names.end());
    CHECK(a.resolved["attn_size"] == 0);
    Built c = build_module(Json::parse(
        R"({"type": "attn_classifier", "vocab": 20, "embed": 4, "hidden": 5, "classes": 3})"), g);
    CHECK(c.resolved["bidirectional"] == true);
    CHECK(c.module->num_parameters() > 0);
    CHECK(test::error_of([&] {
            build_module(Json::parse(R"({"type": "attention", "score": "cosine", "query_size": 2, "key_size": 2})"), g);
          }) == "model.score: expected one of dot, scaled_dot, general, concat, additive, got \"cosine\"");
  }

  TEST_CASE("seq2seq from JSON: every variant, nested attention config") {
    Generator g(4);
    Built s = build_module(Json::parse(R"({"type": "seq2seq", "src_vocab": 12, "tgt_vocab": 10,
        "hidden": 8, "embed": 4, "bidirectional": true,
        "attention": {"type": "bahdanau"}})"), g);
    CHECK(s.resolved["attention"]["score"] == "additive");  // Bahdanau's default
    CHECK(s.resolved["rnn"] == "lstm");
    bool has_u = false;
    for (auto& [n, _] : s.module->named_parameters()) has_u |= n == "decoder.attention.U.weight";
    CHECK(has_u);
    Built again = build_module(s.resolved, g);  // the resolved config round-trips
    CHECK(again.resolved == s.resolved);
    CHECK(test::error_of([&] {
            build_module(Json::parse(R"({"type": "seq2seq", "src_vocab": 5, "tgt_vocab": 5,
                "attention": {"type": "luong", "scor": "dot"}})"), g);
          }) == "model.attention.scor: unknown key (known: input_feeding, score, type)");
    auto dropout_error = [&](const char* p) {
      return test::error_of([&] {
        build_module(Json::parse(std::string(R"({"type": "seq2seq", "src_vocab": 5, "tgt_vocab": 5,
            "dropout": )") + p + "}"), g);
      });
    };
    CHECK(dropout_error("1.0") == "model.dropout: expected a number in [0, 0.999], got 1");
    CHECK(dropout_error("-0.1") == "model.dropout: expected a number in [0, 0.999], got -0.1");
    Built d = build_module(Json::parse(R"({"type": "seq2seq", "src_vocab": 5, "tgt_vocab": 5,
        "dropout": 0.25})"), g);
    CHECK(dynamic_cast<Seq2Seq&>(*d.module).options.dropout == 0.25f);
  }

  TEST_CASE("mistakes name their JSON path") {
    Generator g(2);
    auto err = [&](const char* text, const std::string& path = "model") {
      return test::error_of([&] { build_module(Json::parse(text), g, path); });
    };
    CHECK(err(R"({"type": "lstm", "input_size": 3, "hiden_size": 5})") ==
          "model.hidden_size: missing (required)");
    CHECK(err(R"({"type": "lstm", "input_size": 3, "hidden_size": 5, "bidirectonal": true})") ==
          "model.bidirectonal: unknown key (known: batch_first, bias, bidirectional, dropout, "
          "hidden_size, input_size, num_layers, type)");
    // The full sorted list of types, so a misspelt type shows every choice.
    const std::string types = err(R"({"type": "lstn"})");
    CHECK(types.find("model.type: expected one of ") == 0);
    CHECK(types.find("attention, attn_classifier, ") != std::string::npos);
    CHECK(types.find("linear, lstm, lstm_cell, ") != std::string::npos);
    CHECK(err(R"({"input_size": 3})") == "model.type: missing (required)");
    CHECK(err(R"({"type": "linear", "in_features": 0, "out_features": 2})") ==
          "model.in_features: expected an integer >= 1, got 0");
    CHECK(err(R"({"type": "sequential", "layers": [{"type": "relu"}, {"type": "lstm", "input_size": 2, "hidden_size": 2}]})") ==
          "model.layers[1]: a lstm does not map one tensor to one tensor, so it cannot sit in a "
          "sequential");
    CHECK(err(R"({"type": "sequential", "layers": [{"type": "dropout", "p": 1.5}]})") ==
          "model.layers[0].p: expected a number in [0, 0.999], got 1.5");
    CHECK(err(R"({"type": "sequential"})") ==
          "model.layers: expected a non-empty array of module configs");
  }
}

}  // namespace
}  // namespace qkv
