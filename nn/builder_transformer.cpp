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

TransformerLayerOptions layer_options(JsonReader& r) {
  TransformerLayerOptions o;
  o.d_model = r.require_int("d_model", 1);
  o.nhead = r.require_int("nhead", 1, o.d_model);
  o.dim_feedforward = r.get_int("dim_feedforward", o.dim_feedforward, 1);
  o.dropout = r.get_float("dropout", o.dropout, 0.0, 0.999);
  o.activation = r.get_enum("activation", o.activation);
  o.layer_norm_eps = r.get_float("layer_norm_eps", o.layer_norm_eps, 0.0, 1.0);
  o.batch_first = r.get_bool("batch_first", o.batch_first);
  o.norm_first = r.get_bool("norm_first", o.norm_first);
  return o;
}

// An encoder layer's attention and feed-forward weights: 4 D^2 + 2 D FF floats.
double layer_param_floats(double D, double FF) { return 4 * D * D + 2 * D * FF; }

}  // namespace

void add_transformer_makers(MakerMap& m) {
  m["multihead_attention"] = [](JsonReader& r, Generator& g) {
    MultiheadAttentionOptions o;
    o.embed_dim = r.require_int("embed_dim", 1);
    o.num_heads = r.require_int("num_heads", 1, o.embed_dim);
    o.dropout = r.get_float("dropout", o.dropout, 0.0, 0.999);
    o.bias = r.get_bool("bias", o.bias);
    o.kdim = r.get_int("kdim", o.embed_dim, 1);
    o.vdim = r.get_int("vdim", o.embed_dim, 1);
    o.batch_first = r.get_bool("batch_first", o.batch_first);
    const double E = double(o.embed_dim);
    r.check_fits(kFloatBytes * E * (2 * E + double(o.kdim) + double(o.vdim)), "the parameters",
                 {"embed_dim", "kdim", "vdim"});
    return std::make_shared<MultiheadAttention>(o, g);
  };
  m["layer_norm"] = [](JsonReader& r, Generator&) {
    LayerNormOptions o;
    o.normalized_shape = r.require_int("normalized_shape", 1);
    o.eps = r.get_float("eps", o.eps, 0.0, 1.0);
    o.elementwise_affine = r.get_bool("elementwise_affine", o.elementwise_affine);
    r.check_fits(kFloatBytes * 2 * double(o.normalized_shape), "the parameters",
                 {"normalized_shape"});
    return std::make_shared<LayerNorm>(o);
  };
  m["transformer_encoder_layer"] = [](JsonReader& r, Generator& g) {
    const TransformerLayerOptions o = layer_options(r);
    r.check_fits(kFloatBytes * layer_param_floats(double(o.d_model), double(o.dim_feedforward)),
                 "the parameters", {"d_model", "dim_feedforward"});
    return std::make_shared<TransformerEncoderLayer>(o, g);
  };
  m["transformer_decoder_layer"] = [](JsonReader& r, Generator& g) {
    const TransformerLayerOptions o = layer_options(r);
    r.check_fits(kFloatBytes * layer_param_floats(double(o.d_model), double(o.dim_feedforward)),
                 "the parameters", {"d_model", "dim_feedforward"});
    return std::make_shared<TransformerDecoderLayer>(o, g);
  };
  m["transformer_encoder"] = [](JsonReader& r, Generator& g) {
    TransformerLayerOptions o = layer_options(r);
    TransformerEncoderOptions e;
    e.num_layers = r.get_int("num_layers", e.num_layers, 1, 64);
    e.final_norm = r.get_bool("norm", e.final_norm);
    r.check_fits(kFloatBytes * double(e.num_layers) *
                     layer_param_floats(double(o.d_model), double(o.dim_feedforward)),
                 "the parameters", {"num_layers", "d_model", "dim_feedforward"});
    return std::make_shared<TransformerEncoder>(o, e.num_layers, e.final_norm, g);
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
    o.dropout = r.get_float("dropout", o.dropout, 0.0, 0.999);
    o.activation = r.get_enum("activation", o.activation);
    o.norm_first = r.get_bool("norm_first", o.norm_first);
    o.positional = r.get_enum("positional", o.positional);
    o.max_len = r.get_int("max_len", o.max_len, 1);
    o.pad = int32_t(r.get_int("pad", o.pad, 0, o.tgt_vocab - 1));
    o.bos = int32_t(r.get_int("bos", o.bos, 0, o.tgt_vocab - 1));
    o.eos = int32_t(r.get_int("eos", o.eos, 0, o.tgt_vocab - 1));
    // Embeddings, the encoder layers (a decoder layer holds more) and the position table.
    const double D = double(o.d_model);
    r.check_fits(kFloatBytes * (double(o.src_vocab + o.tgt_vocab) * D +
                                double(o.num_encoder_layers + o.num_decoder_layers) *
                                    layer_param_floats(D, double(o.dim_feedforward)) +
                                double(o.max_len) * D),
                 "the parameters", {"src_vocab", "tgt_vocab", "d_model", "dim_feedforward", "max_len"});
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
    o.dropout = r.get_float("dropout", o.dropout, 0.0, 0.999);
    o.activation = r.get_enum("activation", o.activation);
    o.norm_first = r.get_bool("norm_first", o.norm_first);
    o.positional = r.get_enum("positional", o.positional);
    o.pad = int32_t(r.get_int("pad", o.pad, 0, o.vocab - 1));
    const double D = double(o.d_model);
    r.check_fits(kFloatBytes * (double(o.vocab) * D +
                                double(o.num_layers) * layer_param_floats(D, double(o.dim_feedforward)) +
                                double(o.max_len) * D),
                 "the parameters", {"vocab", "d_model", "dim_feedforward", "max_len"});
    return std::make_shared<TransformerLM>(o, g);
  };
  m["transformer"].data_fills = {{"src_vocab", "src_vocab"}, {"tgt_vocab", "tgt_vocab"}};
  m["transformer_lm"].data_fills = {{"vocab", "src_vocab"}};
}

}  // namespace qkv
