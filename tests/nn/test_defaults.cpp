// One home for each default: every module type the JSON builder knows is built
// from its required keys alone, and each default the reader filled into the
// resolved config must equal the member of a default-constructed options
// struct. A type without an entry here fails the test, so new types cannot
// slip through. The experiment config's defaults: tests/tools/test_config_defaults.cpp.
#include <map>
#include <set>

#include "engine/rng.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/attn_classifier.h"
#include "nn/batchnorm.h"
#include "nn/builder.h"
#include "nn/cbam.h"
#include "nn/conv.h"
#include "nn/embedding.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/multihead_attention.h"
#include "nn/pooling.h"
#include "nn/resnet.h"
#include "nn/rnn.h"
#include "nn/seq2seq.h"
#include "nn/transformer.h"
#include "tests/defaults_utils.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// A module type's required keys and the defaults its options struct holds for
// every other key the reader resolves (`req` gives the required values, for
// defaults that derive from them).
struct Case {
  Json required;
  std::function<Json(const Json& req)> defaults;
};

Json rnn_defaults(const Json&) {
  const RNNOptions d;
  return {{"num_layers", d.num_layers},
          {"bias", d.bias},
          {"batch_first", d.batch_first},
          {"dropout", d.dropout},
          {"bidirectional", d.bidirectional}};
}

Json cell_defaults(const Json&) { return {{"bias", RNNCellOptions{}.bias}}; }

Json layer_defaults(const Json&) {
  const TransformerLayerOptions d;
  return {{"dim_feedforward", d.dim_feedforward},  {"dropout", d.dropout},
          {"activation", enum_name(d.activation)}, {"layer_norm_eps", d.layer_norm_eps},
          {"batch_first", d.batch_first},          {"norm_first", d.norm_first}};
}

Json pool_defaults(const Json&) {
  const Pool2dOptions d;  // stride: absent unless given (the kernel size)
  return {{"kernel_size", d.kernel_h}, {"padding", d.pad_h}};
}

Json adaptive_defaults(const Json&) { return {{"output_size", AdaptivePool2dOptions{}.out_h}}; }

Json none(const Json&) { return Json::object(); }

const std::map<std::string, Case>& cases() {
  static const std::map<std::string, Case> c = {
      {"sequential", {{{"layers", Json::array({{{"type", "relu"}}})}}, none}},
      {"relu", {Json::object(), none}},
      {"gelu", {Json::object(), none}},
      {"tanh", {Json::object(), none}},
      {"sigmoid", {Json::object(), none}},
      {"dropout",
       {Json::object(),
        [](const Json&) {
          return Json{{"p", DropoutOptions{}.p}};
        }}},
      {"linear",
       {{{"in_features", 3}, {"out_features", 2}},
        [](const Json&) {
          return Json{{"bias", LinearOptions{}.bias}};
        }}},
      {"embedding",
       {{{"num_embeddings", 5}, {"embedding_dim", 3}},
        [](const Json&) {
          return Json{{"padding_idx", EmbeddingOptions{}.padding_idx}};
        }}},
      {"lstm", {{{"input_size", 3}, {"hidden_size", 4}}, rnn_defaults}},
      {"gru", {{{"input_size", 3}, {"hidden_size", 4}}, rnn_defaults}},
      {"lstm_cell", {{{"input_size", 3}, {"hidden_size", 4}}, cell_defaults}},
      {"gru_cell", {{{"input_size", 3}, {"hidden_size", 4}}, cell_defaults}},
      {"attention",
       {{{"query_size", 4}, {"key_size", 4}},
        [](const Json&) {
          const AttentionOptions d;
          return Json{{"score", enum_name(d.score)}, {"attn_size", d.attn_size}, {"bias", d.bias}};
        }}},
      {"attn_classifier",
       {{{"vocab", 9}, {"embed", 4}, {"hidden", 5}, {"classes", 3}},
        [](const Json&) {
          const AttnClassifierOptions d;
          return Json{{"bidirectional", d.bidirectional}, {"padding_idx", d.padding_idx}};
        }}},
      {"seq2seq",
       {{{"src_vocab", 9}, {"tgt_vocab", 8}},
        [](const Json&) {
          const Seq2SeqOptions d;
          return Json{{"embed", d.embed},
                      {"hidden", d.hidden},
                      {"rnn", enum_name(d.rnn)},
                      {"layers", d.layers},
                      {"bidirectional", d.bidirectional},
                      {"attention",
                       {{"type", enum_name(d.attention)},
                        {"score", enum_name(d.score)},
                        {"input_feeding", d.input_feeding}}},
                      {"peeky", d.peeky},
                      {"reverse_source", d.reverse_source},
                      {"dropout", d.dropout},
                      {"pad", d.pad},
                      {"bos", d.bos},
                      {"eos", d.eos}};
        }}},
      {"multihead_attention",
       {{{"embed_dim", 8}, {"num_heads", 2}},
        [](const Json& req) {
          const MultiheadAttentionOptions d;  // kdim, vdim 0: embed_dim
          const int64_t D = req["embed_dim"];
          return Json{{"dropout", d.dropout},
                      {"bias", d.bias},
                      {"kdim", d.kdim ? d.kdim : D},
                      {"vdim", d.vdim ? d.vdim : D},
                      {"batch_first", d.batch_first}};
        }}},
      {"layer_norm",
       {{{"normalized_shape", 6}},
        [](const Json&) {
          const LayerNormOptions d;
          return Json{{"eps", d.eps}, {"elementwise_affine", d.elementwise_affine}};
        }}},
      {"transformer_encoder_layer", {{{"d_model", 8}, {"nhead", 2}}, layer_defaults}},
      {"transformer_decoder_layer", {{{"d_model", 8}, {"nhead", 2}}, layer_defaults}},
      {"transformer_encoder",
       {{{"d_model", 8}, {"nhead", 2}},
        [](const Json& req) {
          const TransformerEncoderOptions d;
          Json j = layer_defaults(req);
          j["num_layers"] = d.num_layers;
          j["norm"] = d.final_norm;
          return j;
        }}},
      {"transformer",
       {{{"src_vocab", 9}, {"tgt_vocab", 8}},
        [](const Json&) {
          const TransformerOptions d;
          return Json{{"d_model", d.d_model},
                      {"nhead", d.nhead},
                      {"num_encoder_layers", d.num_encoder_layers},
                      {"num_decoder_layers", d.num_decoder_layers},
                      {"dim_feedforward", d.dim_feedforward},
                      {"dropout", d.dropout},
                      {"activation", enum_name(d.activation)},
                      {"norm_first", d.norm_first},
                      {"positional", enum_name(d.positional)},
                      {"max_len", d.max_len},
                      {"pad", d.pad},
                      {"bos", d.bos},
                      {"eos", d.eos}};
        }}},
      {"transformer_lm",
       {{{"vocab", 9}},
        [](const Json&) {
          const TransformerLMOptions d;
          return Json{{"d_model", d.d_model},
                      {"nhead", d.nhead},
                      {"num_layers", d.num_layers},
                      {"dim_feedforward", d.dim_feedforward},
                      {"max_len", d.max_len},
                      {"dropout", d.dropout},
                      {"activation", enum_name(d.activation)},
                      {"norm_first", d.norm_first},
                      {"positional", enum_name(d.positional)},
                      {"pad", d.pad}};
        }}},
      {"conv2d",
       {{{"in_channels", 2}, {"out_channels", 4}},
        [](const Json&) {
          const Conv2dOptions d;  // square defaults: one number each
          return Json{{"kernel_size", d.kernel_h}, {"stride", d.stride_h}, {"padding", d.pad_h},
                      {"dilation", d.dil_h},       {"groups", d.groups},   {"bias", d.bias}};
        }}},
      {"max_pool2d", {Json::object(), pool_defaults}},
      {"avg_pool2d", {Json::object(), pool_defaults}},
      {"adaptive_avg_pool2d", {Json::object(), adaptive_defaults}},
      {"adaptive_max_pool2d", {Json::object(), adaptive_defaults}},
      {"batch_norm2d",
       {{{"num_features", 4}},
        [](const Json&) {
          const BatchNorm2dOptions d;
          return Json{{"eps", d.eps}, {"momentum", d.momentum}, {"affine", d.affine}};
        }}},
      {"flatten",
       {Json::object(),
        [](const Json&) {
          const FlattenOptions d;
          return Json{{"start_dim", d.start_dim}, {"end_dim", d.end_dim}};
        }}},
      {"channel_attention",
       {{{"channels", 32}},
        [](const Json&) {
          return Json{{"ratio", CbamOptions{}.ratio}};
        }}},
      {"spatial_attention",
       {Json::object(),
        [](const Json&) {
          return Json{{"kernel_size", CbamOptions{}.kernel_size}};
        }}},
      {"cbam",
       {{{"channels", 32}},
        [](const Json&) {
          const CbamOptions d;
          return Json{{"ratio", d.ratio}, {"kernel_size", d.kernel_size}};
        }}},
      {"se",
       {{{"channels", 32}},
        [](const Json&) {
          return Json{{"reduction", SqueezeExcitationOptions{}.reduction}};
        }}},
      {"basic_block",
       {{{"in_channels", 4}, {"out_channels", 4}},
        [](const Json&) {
          const BasicBlockOptions d;  // ratio, kernel_size: read only with cbam
          return Json{{"stride", d.stride}, {"cbam", d.cbam}};
        }}},
  };
  return c;
}

TEST_SUITE("nn/defaults") {
  TEST_CASE("every module type has an entry here, and no entry is stale") {
    const std::vector<std::string> types = module_types();
    for (const auto& t : types) CHECK_MESSAGE(cases().count(t) == 1, t, " has no entry in cases()");
    for (const auto& [t, _] : cases())
      CHECK_MESSAGE(std::count(types.begin(), types.end(), t) == 1, t, " is not a module type");
  }

  TEST_CASE("a module built from its required keys resolves to its options struct's defaults") {
    for (const auto& t : module_types()) {
      auto it = cases().find(t);
      if (it == cases().end()) continue;  // reported by the test above
      CAPTURE(t);
      Json cfg = it->second.required;
      cfg["type"] = t;
      Generator g(1);
      const Built b = build_module(cfg, g);
      test::check_defaults(b.resolved, cfg, it->second.defaults(it->second.required), t);
    }
  }

  TEST_CASE("BasicBlock's CBAM keys default to CBAM's") {
    Generator g(1);
    const Json cfg = {
        {"type", "basic_block"}, {"in_channels", 4}, {"out_channels", 32}, {"cbam", true}};
    const BasicBlockOptions d;
    const Json want = {{"stride", d.stride}, {"ratio", d.ratio}, {"kernel_size", d.kernel_size}};
    test::check_defaults(build_module(cfg, g).resolved, cfg, want, "basic_block");
    CHECK(d.ratio == CbamOptions{}.ratio);
    CHECK(d.kernel_size == CbamOptions{}.kernel_size);
  }

  TEST_CASE("enum names parse back to their values, and a wrong name lists the allowed ones") {
    auto round_trip = [](auto e) {
      using E = decltype(e);
      for (const auto& n : enum_names(e)) CHECK(enum_parse<E>(n.name, "x") == n.value);
    };
    round_trip(RNNKind{});
    round_trip(Seq2SeqAttention{});
    round_trip(TransformerActivation{});
    round_trip(PositionalKind{});
    round_trip(Score{});
    CHECK(test::error_of([] { enum_parse<TransformerActivation>("swish", "model.activation"); }) ==
          "model.activation: expected one of relu, gelu, got \"swish\"");
    Generator g(1);
    CHECK(test::error_of([&] {
            build_module(Json{{"type", "transformer_lm"}, {"vocab", 5}, {"positional", "rope"}}, g);
          }) == "model.positional: expected one of sinusoidal, learned, got \"rope\"");
  }
}

}  // namespace
}  // namespace qkv
