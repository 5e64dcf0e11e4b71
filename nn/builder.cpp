#include "nn/builder.h"

#include <algorithm>
#include <new>

#include "engine/memory.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/attn_classifier.h"
#include "nn/builder_makers.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/rnn.h"
#include "nn/seq2seq.h"
#include "nn/sequential.h"

namespace qkv {
namespace {

// Every reader below starts from a default-constructed options struct and
// passes its member as the default: the struct is the one home of each default
// (tests/nn/test_defaults.cpp holds the resolved configs against it).

RNNOptions rnn_options(JsonReader& r, double gates) {
  RNNOptions o;
  o.input_size = r.require_int("input_size", 1);
  o.hidden_size = r.require_int("hidden_size", 1);
  o.num_layers = r.get_int("num_layers", o.num_layers, 1, 64);
  o.bias = r.get_bool("bias", o.bias);
  o.batch_first = r.get_bool("batch_first", o.batch_first);
  o.dropout = r.get_float("dropout", o.dropout, 0.0, 0.999);
  o.bidirectional = r.get_bool("bidirectional", o.bidirectional);
  r.check_fits(kFloatBytes * rnn_param_floats(gates, double(o.input_size), double(o.hidden_size),
                                              o.bidirectional ? 2 : 1),
               "the parameters", {"input_size", "hidden_size"});
  return o;
}

RNNCellOptions cell_options(JsonReader& r, double gates) {
  RNNCellOptions o;
  o.input_size = r.require_int("input_size", 1);
  o.hidden_size = r.require_int("hidden_size", 1);
  o.bias = r.get_bool("bias", o.bias);
  r.check_fits(kFloatBytes * rnn_param_floats(gates, double(o.input_size), double(o.hidden_size), 1),
               "the parameters", {"input_size", "hidden_size"});
  return o;
}

MakerMap core_makers() {
  MakerMap m = {
      {"linear",
       [](JsonReader& r, Generator& g) {
         LinearOptions o;
         o.in_features = r.require_int("in_features", 1);
         o.out_features = r.require_int("out_features", 1);
         o.bias = r.get_bool("bias", o.bias);
         r.check_fits(kFloatBytes * double(o.in_features) * double(o.out_features),
                      "the parameters", {"in_features", "out_features"});
         return std::make_shared<Linear>(o, g);
       }},
      {"embedding",
       [](JsonReader& r, Generator& g) {
         EmbeddingOptions o;
         o.num_embeddings = r.require_int("num_embeddings", 1);
         o.embedding_dim = r.require_int("embedding_dim", 1);
         o.padding_idx = r.get_int("padding_idx", o.padding_idx, -1, o.num_embeddings - 1);
         r.check_fits(kFloatBytes * double(o.num_embeddings) * double(o.embedding_dim),
                      "the parameters", {"num_embeddings", "embedding_dim"});
         return std::make_shared<Embedding>(o, g);
       }},
      {"lstm",
       [](JsonReader& r, Generator& g) { return std::make_shared<LSTM>(rnn_options(r, 4), g); }},
      {"gru", [](JsonReader& r, Generator& g) { return std::make_shared<GRU>(rnn_options(r, 3), g); }},
      {"lstm_cell",
       [](JsonReader& r, Generator& g) {
         const RNNCellOptions o = cell_options(r, 4);
         return std::make_shared<LSTMCell>(o.input_size, o.hidden_size, g, o.bias);
       }},
      {"gru_cell",
       [](JsonReader& r, Generator& g) {
         const RNNCellOptions o = cell_options(r, 3);
         return std::make_shared<GRUCell>(o.input_size, o.hidden_size, g, o.bias);
       }},
      {"relu", [](JsonReader&, Generator&) { return std::make_shared<Activation>(UnaryOp::relu); }},
      {"gelu", [](JsonReader&, Generator&) { return std::make_shared<Activation>(UnaryOp::gelu); }},
      {"tanh", [](JsonReader&, Generator&) { return std::make_shared<Activation>(UnaryOp::tanh); }},
      {"sigmoid",
       [](JsonReader&, Generator&) { return std::make_shared<Activation>(UnaryOp::sigmoid); }},
      {"attention",
       [](JsonReader& r, Generator& g) {
         AttentionOptions o;
         o.score = r.get_enum("score", o.score);
         o.query_size = r.require_int("query_size", 1);
         o.key_size = r.require_int("key_size", 1);
         o.attn_size = r.get_int("attn_size", o.attn_size, 0);
         o.bias = r.get_bool("bias", o.bias);
         return std::make_shared<Attention>(o, g);
       }},
      {"attn_classifier",
       [](JsonReader& r, Generator& g) {
         AttnClassifierOptions o;
         o.vocab = r.require_int("vocab", 1);
         o.embed = r.require_int("embed", 1);
         o.hidden = r.require_int("hidden", 1);
         o.classes = r.require_int("classes", 2);
         o.bidirectional = r.get_bool("bidirectional", o.bidirectional);
         o.padding_idx = r.get_int("padding_idx", o.padding_idx, -1, o.vocab - 1);
         const double E = double(o.embed), H = double(o.hidden);
         r.check_fits(kFloatBytes * (double(o.vocab) * E +
                                     rnn_param_floats(4, E, H, o.bidirectional ? 2 : 1)),
                      "the parameters", {"vocab", "embed", "hidden"});
         return std::make_shared<AttnClassifier>(o, g);
       }},
      {"seq2seq",
       [](JsonReader& r, Generator& g) {
         Seq2SeqOptions o;
         o.src_vocab = r.require_int("src_vocab", 1);
         o.tgt_vocab = r.require_int("tgt_vocab", 1);
         o.embed = r.get_int("embed", o.embed, 1);
         o.hidden = r.get_int("hidden", o.hidden, 1);
         o.rnn = r.get_enum("rnn", o.rnn);
         o.layers = r.get_int("layers", o.layers, 1, 16);
         o.bidirectional = r.get_bool("bidirectional", o.bidirectional);
         JsonReader a = r.child("attention");  // {"type": "luong", "score": "general", ...}
         o.attention = a.get_enum("type", o.attention);
         // Bahdanau's own score is additive: the default there.
         const bool bahdanau = o.attention == Seq2SeqAttention::bahdanau;
         o.score = a.get_enum("score", bahdanau ? Score::additive : o.score);
         o.input_feeding = a.get_bool("input_feeding", o.input_feeding);
         a.finish();
         r.set_child("attention", a);
         o.peeky = r.get_bool("peeky", o.peeky);
         o.reverse_source = r.get_bool("reverse_source", o.reverse_source);
         o.dropout = r.get_float("dropout", o.dropout, 0.0, 0.999);
         o.pad = int32_t(r.get_int("pad", o.pad, 0));
         o.bos = int32_t(r.get_int("bos", o.bos, 0));
         o.eos = int32_t(r.get_int("eos", o.eos, 0));
         // Both embeddings, the encoder's first layer, the decoder's output layer.
         const double E = double(o.embed), H = double(o.hidden);
         const double gates = o.rnn == RNNKind::gru ? 3 : 4;
         r.check_fits(kFloatBytes * (double(o.src_vocab + o.tgt_vocab) * E +
                                     rnn_param_floats(gates, E, H, o.bidirectional ? 2 : 1) +
                                     double(o.tgt_vocab) * H),
                      "the parameters", {"src_vocab", "tgt_vocab", "embed", "hidden"});
         return std::make_shared<Seq2Seq>(o, g);
       }},
      {"dropout",
       [](JsonReader& r, Generator& g) {
         DropoutOptions o;
         o.p = r.get_float("p", o.p, 0.0, 0.999);
         return std::make_shared<Dropout>(o.p, g);
       }},
  };
  m["seq2seq"].data_fills = {{"src_vocab", "src_vocab"}, {"tgt_vocab", "tgt_vocab"}};
  m["attn_classifier"].data_fills = {{"vocab", "src_vocab"}, {"classes", "classes"}};
  return m;
}

MakerMap& makers() {
  static MakerMap m = [] {
    MakerMap all = core_makers();
    add_transformer_makers(all);
    add_vision_makers(all);
    return all;
  }();
  return m;
}

}  // namespace

void register_module_type(const std::string& type, ModuleType t) {
  check(!type.empty() && type != "sequential" && !makers().count(type), "register_module_type: '",
        type, "' is ", type.empty() ? "empty" : "already a module type");
  check(bool(t.make), "register_module_type: '", type, "' has no maker");
  makers().emplace(type, std::move(t));
}

Json fill_data_facts(const Json& config, const Json& facts) {
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) return config;
  const auto it = makers().find(config["type"].get<std::string>());
  if (it == makers().end()) return config;
  Json m = config;
  for (const auto& [key, fact] : it->second.data_fills) {
    if (m.contains(key) || !facts.contains(fact) || !facts[fact].is_number()) continue;
    if (facts[fact].get<double>() > 0) m[key] = facts[fact];
  }
  return m;
}

BuiltModel build_model(const Json& config, Generator& gen, const std::string& path) {
  Built b = build_module(config, gen, path);
  auto model = std::dynamic_pointer_cast<Model>(b.module);
  check(model != nullptr, path, ": a ", b.resolved["type"].get<std::string>(),
        " is a module, not a model (no loss, metrics or prediction): use a model type such as "
        "seq2seq, transformer, transformer_lm, attn_classifier or sequential");
  return {model, b.resolved};
}

std::vector<std::string> module_types() {
  std::vector<std::string> t = {"sequential"};
  for (const auto& [k, _] : makers()) t.push_back(k);
  std::sort(t.begin(), t.end());
  return t;
}

Built build_module(const Json& config, Generator& gen, const std::string& path) {
  JsonReader r(config, path);
  const std::string type = r.require_string("type", module_types());
  Built b;
  if (type == "sequential") {
    const std::string lpath = r.path_of("layers");
    const Json layers = r.get_raw("layers");
    check(layers.is_array() && !layers.empty(), lpath,
          ": expected a non-empty array of module configs");
    r.finish();
    auto seq = std::make_shared<Sequential>();
    Json resolved_layers = Json::array();
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string ipath = lpath + "[" + std::to_string(i) + "]";
      Built layer = build_module(layers[i], gen, ipath);
      auto unary = std::dynamic_pointer_cast<UnaryModule>(layer.module);
      check(unary != nullptr, ipath, ": a ", layer.resolved["type"].get<std::string>(),
            " does not map one tensor to one tensor, so it cannot sit in a sequential");
      seq->push_back(unary);
      resolved_layers.push_back(layer.resolved);
    }
    b.module = seq;
    b.resolved = r.resolved();
    b.resolved["layers"] = resolved_layers;
    return b;
  }
  {
    // Allocation failures inside name this module's config; library code's
    // bad_alloc (a vector, a map) too.
    AllocScope scope(path);
    try {
      b.module = makers().at(type).make(r, gen);
    } catch (const std::bad_alloc&) {
      fail_out_of_memory(path + ": building a " + type);
    }
  }
  r.finish();
  b.resolved = r.resolved();
  return b;
}

}  // namespace qkv
