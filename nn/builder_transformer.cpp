// JSON makers for the transformer modules (see nn/builder_makers.h):
// multihead_attention, layer_norm, transformer_encoder_layer,
// transformer_decoder_layer, transformer_encoder, transformer (seq2seq) and
// transformer_lm. Keys and defaults follow PyTorch's constructors.
#include <memory>

#include "nn/builder_makers.h"
#include "nn/layernorm.h"
#include "nn/multihead_attention.h"
#include "nn/transformer.h"

namespace qkv {
namespace {

const std::vector<std::string> kActivations = {"relu", "gelu"};
const std::vector<std::string> kPositional = {"sinusoidal", "learned"};

TransformerLayerOptions layer_options(JsonReader& r) {
  TransformerLayerOptions o;
  o.d_model = r.require_int("d_model", 1);
  o.nhead = r.require_int("nhead", 1, o.d_model);
  o.dim_feedforward = r.get_int("dim_feedforward", o.dim_feedforward, 1);
  o.dropout = float(r.get_number("dropout", o.dropout, 0.0, 0.999));
  o.activation = r.get_string("activation", o.activation, kActivations);
  o.layer_norm_eps = float(r.get_number("layer_norm_eps", o.layer_norm_eps, 0.0, 1.0));
  o.batch_first = r.get_bool("batch_first", o.batch_first);
  o.norm_first = r.get_bool("norm_first", o.norm_first);
  return o;
}

}  // namespace

void add_transformer_makers(MakerMap& m) {
  m["multihead_attention"] = [](JsonReader& r, Generator& g) {
    MultiheadAttentionOptions o;
    o.embed_dim = r.require_int("embed_dim", 1);
    o.num_heads = r.require_int("num_heads", 1, o.embed_dim);
    o.dropout = float(r.get_number("dropout", o.dropout, 0.0, 0.999));
    o.bias = r.get_bool("bias", o.bias);
    o.kdim = r.get_int("kdim", o.embed_dim, 1);
    o.vdim = r.get_int("vdim", o.embed_dim, 1);
    o.batch_first = r.get_bool("batch_first", o.batch_first);
    return std::make_shared<MultiheadAttention>(o, g);
  };
  m["layer_norm"] = [](JsonReader& r, Generator&) {
    LayerNormOptions o;
    o.normalized_shape = r.require_int("normalized_shape", 1);
    o.eps = float(r.get_number("eps", o.eps, 0.0, 1.0));
    o.elementwise_affine = r.get_bool("elementwise_affine", o.elementwise_affine);
    return std::make_shared<LayerNorm>(o);
  };
  m["transformer_encoder_layer"] = [](JsonReader& r, Generator& g) {
    return std::make_shared<TransformerEncoderLayer>(layer_options(r), g);
  };
  m["transformer_decoder_layer"] = [](JsonReader& r, Generator& g) {
    return std::make_shared<TransformerDecoderLayer>(layer_options(r), g);
  };
  m["transformer_encoder"] = [](JsonReader& r, Generator& g) {
    TransformerLayerOptions o = layer_options(r);
    const int64_t n = r.get_int("num_layers", 6, 1, 64);
    const bool norm = r.get_bool("norm", false);
    return std::make_shared<TransformerEncoder>(o, n, norm, g);
  };
  m["transformer"] = [](JsonReader& r, Generator& g) {
    TransformerOptions o;
    o.src_vocab = r.require_int("src_vocab", 1);
    o.tgt_vocab = r.require_int("tgt_vocab", 1);
    o.d_model = r.get_int("d_model", o.d_model, 1);
    o.nhead = r.get_int("nhead", o.nhead, 1, o.d_model);
    o.num_encoder_layers = r.get_int("num_encoder_layers", o.num_encoder_layers, 1, 64);
    o.num_decoder_layers = r.get_int("num_decoder_layers", o.num_decoder_layers, 1, 64);
    o.dim_feedforward = r.get_int("dim_feedforward", o.dim_feedforward, 1);
    o.dropout = float(r.get_number("dropout", o.dropout, 0.0, 0.999));
    o.activation = r.get_string("activation", o.activation, kActivations);
    o.norm_first = r.get_bool("norm_first", o.norm_first);
    o.positional = r.get_string("positional", o.positional, kPositional);
    o.max_len = r.get_int("max_len", o.max_len, 1);
    o.pad = int32_t(r.get_int("pad", o.pad, 0, o.tgt_vocab - 1));
    o.bos = int32_t(r.get_int("bos", o.bos, 0, o.tgt_vocab - 1));
    o.eos = int32_t(r.get_int("eos", o.eos, 0, o.tgt_vocab - 1));
    return std::make_shared<Transformer>(o, g);
  };
  m["transformer_lm"] = [](JsonReader& r, Generator& g) {
    TransformerLMOptions o;
    o.vocab = r.require_int("vocab", 1);
    o.d_model = r.get_int("d_model", o.d_model, 1);
    o.nhead = r.get_int("nhead", o.nhead, 1, o.d_model);
    o.num_layers = r.get_int("num_layers", o.num_layers, 1, 64);
    o.dim_feedforward = r.get_int("dim_feedforward", o.dim_feedforward, 1);
    o.max_len = r.get_int("max_len", o.max_len, 1);
    o.dropout = float(r.get_number("dropout", o.dropout, 0.0, 0.999));
    o.activation = r.get_string("activation", o.activation, kActivations);
    o.norm_first = r.get_bool("norm_first", o.norm_first);
    o.positional = r.get_string("positional", o.positional, kPositional);
    o.pad = int32_t(r.get_int("pad", o.pad, 0, o.vocab - 1));
    return std::make_shared<TransformerLM>(o, g);
  };
  m["transformer"].data_fills = {{"src_vocab", "src_vocab"}, {"tgt_vocab", "tgt_vocab"}};
  m["transformer_lm"].data_fills = {{"vocab", "src_vocab"}};
}

}  // namespace qkv
