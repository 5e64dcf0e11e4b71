// Transformer layers, stacks, the seq2seq model and the causal LM; see nn/transformer.h.
// Legend: B batch, T target time, S source time, D d_model, NH heads, V vocab, K decode rows.
#include "nn/transformer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "nn/init.h"

namespace qkv {
namespace {

void validate(const TransformerLayerOptions& o, const char* what) {
  check(o.d_model >= 1 && o.nhead >= 1 && o.d_model % o.nhead == 0, what, ": d_model (", o.d_model,
        ") must be a positive multiple of nhead (", o.nhead, ")");
  check(o.dim_feedforward >= 1, what, ": dim_feedforward must be >= 1, got ", o.dim_feedforward);
  check(o.dropout >= 0.f && o.dropout < 1.f, what, ": dropout must be in [0, 1), got ", o.dropout);
}

MultiheadAttentionOptions mha_options(const TransformerLayerOptions& o) {
  MultiheadAttentionOptions m;
  m.embed_dim = o.d_model;
  m.num_heads = o.nhead;
  m.dropout = o.dropout;
  m.batch_first = true;  // the layers work batch-first inside
  return m;
}

// The feed-forward block of both layers: linear2(dropout(act(linear1 x))),
// [..., D] -> [..., D]. With ReLU and no dropout to apply (p = 0, or not
// training) it is the one op feed_forward_relu, whose backward has no ReLU
// pass; otherwise Linear (ReLU fused into its GEMM), dropout, Linear.
Var position_wise(const TransformerLayerOptions& o, const Linear& l1, const Linear& l2,
                  const Var& x, bool use_dropout, bool training, Generator& gen) {
  const bool drops = use_dropout && training && o.dropout > 0.f;
  if (o.activation == TransformerActivation::relu && !drops && l1.bias.defined() &&
      l2.bias.defined())
    return feed_forward_relu(x, l1.weight, l1.bias, l2.weight, l2.bias);
  Var h = o.activation == TransformerActivation::gelu ? gelu(linear(x, l1.weight, l1.bias))
                                                      : linear_relu(x, l1.weight, l1.bias);
  if (use_dropout) h = dropout(h, o.dropout, training, gen);
  return linear(h, l2.weight, l2.bias);
}

// [T,B,D] <-> [B,T,D] unless already batch-first.
Var to_bf(const Var& x, bool batch_first) { return batch_first ? x : transpose(x, 0, 1); }

std::string layer_text(const char* name, const TransformerLayerOptions& o) {
  std::ostringstream s;
  s << name << "(d_model=" << o.d_model << ", nhead=" << o.nhead
    << ", dim_feedforward=" << o.dim_feedforward << ", dropout=" << o.dropout
    << ", activation=" << enum_name(o.activation)
    << ", norm_first=" << (o.norm_first ? "true" : "false")
    << ", batch_first=" << (o.batch_first ? "true" : "false") << ")";
  return s.str();
}

// Embedding ~ N(0, 1/D): scaled by sqrt(D) it is of unit size (see the header).
std::shared_ptr<Embedding> scaled_embedding(int64_t vocab, int64_t D, int32_t pad, Generator& gen) {
  auto e = std::make_shared<Embedding>(EmbeddingOptions{vocab, D, pad}, gen);
  init::normal(e->weight.value_mut(), 0.f, 1.f / std::sqrt(float(D)), gen);
  if (pad >= 0) std::fill_n(e->weight.value_mut().data() + int64_t(pad) * D, D, 0.f);
  return e;
}

// Index of the first maximum of p[0, n).
int32_t argmax(const float* p, int64_t n) { return int32_t(std::max_element(p, p + n) - p); }

}  // namespace

void ModuleList::push_back(std::shared_ptr<Module> m) {
  const std::string name = std::to_string(named_children().size());
  register_module(name, std::move(m));
}

// ---- encoder layer ------------------------------------------------------------------

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& opt, Generator& gen)
    : options(opt), gen_(&gen) {
  validate(opt, "TransformerEncoderLayer");
  const int64_t D = opt.d_model;
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(mha_options(opt), gen));
  linear1 = register_module("linear1", std::make_shared<Linear>(LinearOptions{D, opt.dim_feedforward}, gen));
  linear2 = register_module("linear2", std::make_shared<Linear>(LinearOptions{opt.dim_feedforward, D}, gen));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(LayerNormOptions{D, opt.layer_norm_eps}));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(LayerNormOptions{D, opt.layer_norm_eps}));
}

Var TransformerEncoderLayer::feed_forward(const Var& x, bool use_dropout) {
  return position_wise(options, *linear1, *linear2, x, use_dropout, training(), *gen_);
}

template <class SelfAttn>
Var TransformerEncoderLayer::body(const Var& x0, SelfAttn&& sa, bool use_dropout) {
  auto drop = [&](const Var& v) {
    return use_dropout ? dropout(v, options.dropout, training(), *gen_) : v;
  };
  Var x = x0;
  if (options.norm_first) {
    x = x + drop(sa(norm1->forward(x)));
    x = x + drop(feed_forward(norm2->forward(x), use_dropout));
  } else {
    x = norm1->forward(x + drop(sa(x)));
    x = norm2->forward(x + drop(feed_forward(x, use_dropout)));
  }
  return x;
}

Var TransformerEncoderLayer::forward(const Var& src, const AttentionMasks& masks) {
  return to_bf(forward_bf(to_bf(src, options.batch_first), masks), options.batch_first);
}

Var TransformerEncoderLayer::forward_bf(const Var& x, const AttentionMasks& masks) {
  // x: [B,T,D] -> [B,T,D]
  check(x.dim() == 3 && x.size(2) == options.d_model, "TransformerEncoderLayer: input must be [B,T,",
        options.d_model, "], got ", x.shape());
  return body(
      x, [&](const Var& v) { return self_attn->attend(v, v, v, masks, false).output; }, true);
}

Tensor TransformerEncoderLayer::step(const Tensor& x, KVCache& cache) {
  // x: [K,D] -> [K,D]
  NoGrad ng;
  return body(
             Var(x), [&](const Var& v) { return Var(self_attn->step_self(v.value(), cache)); },
             false)
      .value();
}

std::string TransformerEncoderLayer::describe() const {
  return layer_text("TransformerEncoderLayer", options);
}

// ---- decoder layer ------------------------------------------------------------------

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& opt, Generator& gen)
    : options(opt), gen_(&gen) {
  validate(opt, "TransformerDecoderLayer");
  const int64_t D = opt.d_model;
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(mha_options(opt), gen));
  multihead_attn =
      register_module("multihead_attn", std::make_shared<MultiheadAttention>(mha_options(opt), gen));
  linear1 = register_module("linear1", std::make_shared<Linear>(LinearOptions{D, opt.dim_feedforward}, gen));
  linear2 = register_module("linear2", std::make_shared<Linear>(LinearOptions{opt.dim_feedforward, D}, gen));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(LayerNormOptions{D, opt.layer_norm_eps}));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(LayerNormOptions{D, opt.layer_norm_eps}));
  norm3 = register_module("norm3", std::make_shared<LayerNorm>(LayerNormOptions{D, opt.layer_norm_eps}));
}

Var TransformerDecoderLayer::feed_forward(const Var& x, bool use_dropout) {
  return position_wise(options, *linear1, *linear2, x, use_dropout, training(), *gen_);
}

template <class SelfAttn, class CrossAttn>
Var TransformerDecoderLayer::body(const Var& x0, SelfAttn&& sa, CrossAttn&& ca, bool use_dropout) {
  auto drop = [&](const Var& v) {
    return use_dropout ? dropout(v, options.dropout, training(), *gen_) : v;
  };
  Var x = x0;
  if (options.norm_first) {
    x = x + drop(sa(norm1->forward(x)));
    x = x + drop(ca(norm2->forward(x)));
    x = x + drop(feed_forward(norm3->forward(x), use_dropout));
  } else {
    x = norm1->forward(x + drop(sa(x)));
    x = norm2->forward(x + drop(ca(x)));
    x = norm3->forward(x + drop(feed_forward(x, use_dropout)));
  }
  return x;
}

Var TransformerDecoderLayer::forward(const Var& tgt, const Var& memory,
                                     const AttentionMasks& tgt_masks,
                                     const AttentionMasks& memory_masks, Var* cross_weights) {
  const bool bf = options.batch_first;
  return to_bf(forward_bf(to_bf(tgt, bf), to_bf(memory, bf), tgt_masks, memory_masks, cross_weights),
               bf);
}

Var TransformerDecoderLayer::forward_bf(const Var& x, const Var& memory,
                                        const AttentionMasks& tgt_masks,
                                        const AttentionMasks& memory_masks, Var* cross_weights) {
  // x: [B,T,D], memory: [B,S,D] -> [B,T,D]
  check(x.dim() == 3 && x.size(2) == options.d_model && memory.dim() == 3 &&
            memory.size(2) == options.d_model && memory.size(0) == x.size(0),
        "TransformerDecoderLayer: expected tgt [B,T,", options.d_model, "] and memory [B,S,",
        options.d_model, "], got ", x.shape(), " and ", memory.shape());
  return body(
      x, [&](const Var& v) { return self_attn->attend(v, v, v, tgt_masks, false).output; },
      [&](const Var& v) {
        MultiheadAttentionOutput r =
            multihead_attn->attend(v, memory, memory, memory_masks, cross_weights != nullptr, false);
        if (cross_weights) *cross_weights = r.weights;
        return r.output;
      },
      true);
}

Tensor TransformerDecoderLayer::step(const Tensor& x, KVCache& cache, const KVCache& mem,
                                     const IntTensor* memory_lengths, Tensor* cross_weights) {
  // x: [K,D] -> [K,D]
  NoGrad ng;
  return body(
             Var(x), [&](const Var& v) { return Var(self_attn->step_self(v.value(), cache)); },
             [&](const Var& v) {
               return Var(multihead_attn->step_cross(v.value(), mem, memory_lengths, cross_weights));
             },
             false)
      .value();
}

std::string TransformerDecoderLayer::describe() const {
  return layer_text("TransformerDecoderLayer", options);
}

// ---- stacks -------------------------------------------------------------------------

TransformerEncoder::TransformerEncoder(const TransformerLayerOptions& opt, int64_t num_layers,
                                       bool final_norm, Generator& gen)
    : options(opt) {
  check(num_layers >= 1, "TransformerEncoder: num_layers must be >= 1, got ", num_layers);
  auto list = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) {
    layer.push_back(std::make_shared<TransformerEncoderLayer>(opt, gen));
    list->push_back(layer.back());
  }
  if (final_norm)
    norm = register_module("norm", std::make_shared<LayerNorm>(LayerNormOptions{opt.d_model, opt.layer_norm_eps}));
}

Var TransformerEncoder::forward(const Var& src, const AttentionMasks& masks) {
  return to_bf(forward_bf(to_bf(src, options.batch_first), masks), options.batch_first);
}

Var TransformerEncoder::forward_bf(const Var& x0, const AttentionMasks& masks) {
  Var x = x0;
  for (auto& l : layer) x = l->forward_bf(x, masks);
  return norm ? norm->forward(x) : x;
}

std::string TransformerEncoder::describe() const {
  std::ostringstream s;
  s << "TransformerEncoder(num_layers=" << layer.size() << ", norm=" << (norm ? "true" : "false") << ")";
  return s.str();
}

TransformerDecoder::TransformerDecoder(const TransformerLayerOptions& opt, int64_t num_layers,
                                       bool final_norm, Generator& gen)
    : options(opt) {
  check(num_layers >= 1, "TransformerDecoder: num_layers must be >= 1, got ", num_layers);
  auto list = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) {
    layer.push_back(std::make_shared<TransformerDecoderLayer>(opt, gen));
    list->push_back(layer.back());
  }
  if (final_norm)
    norm = register_module("norm", std::make_shared<LayerNorm>(LayerNormOptions{opt.d_model, opt.layer_norm_eps}));
}

Var TransformerDecoder::forward(const Var& tgt, const Var& memory, const AttentionMasks& tgt_masks,
                                const AttentionMasks& memory_masks, Var* cross_weights) {
  const bool bf = options.batch_first;
  return to_bf(forward_bf(to_bf(tgt, bf), to_bf(memory, bf), tgt_masks, memory_masks, cross_weights),
               bf);
}

Var TransformerDecoder::forward_bf(const Var& x0, const Var& memory, const AttentionMasks& tgt_masks,
                                   const AttentionMasks& memory_masks, Var* cross_weights) {
  Var x = x0;
  for (size_t i = 0; i < layer.size(); ++i)
    x = layer[i]->forward_bf(x, memory, tgt_masks, memory_masks,
                             i + 1 == layer.size() ? cross_weights : nullptr);
  return norm ? norm->forward(x) : x;
}

std::string TransformerDecoder::describe() const {
  std::ostringstream s;
  s << "TransformerDecoder(num_layers=" << layer.size() << ", norm=" << (norm ? "true" : "false") << ")";
  return s.str();
}

// ---- the seq2seq model ----------------------------------------------------------------

namespace {

TransformerLayerOptions layer_options(int64_t D, int64_t NH, int64_t FF, float dropout,
                                      TransformerActivation act, bool norm_first) {
  TransformerLayerOptions l;
  l.d_model = D, l.nhead = NH, l.dim_feedforward = FF, l.dropout = dropout;
  l.activation = act, l.batch_first = true, l.norm_first = norm_first;
  return l;
}

void validate(const TransformerOptions& o) {
  check(o.src_vocab >= 1 && o.tgt_vocab >= 1, "Transformer: src_vocab and tgt_vocab must be >= 1, got ",
        o.src_vocab, " and ", o.tgt_vocab);
  check(o.max_len >= 1, "Transformer: max_len must be >= 1, got ", o.max_len);
  for (auto [name, id] : {std::pair{"pad", o.pad}, {"bos", o.bos}, {"eos", o.eos}})
    check(id >= 0 && id < o.tgt_vocab, "Transformer: ", name, " id ", id, " out of range [0,",
          o.tgt_vocab, ")");
  check(o.pad < o.src_vocab, "Transformer: pad id ", o.pad, " out of range of src_vocab ", o.src_vocab);
}

// ids: [R] -> values[ids[r]] for each r
IntTensor gather(const IntTensor& values, const IntTensor& ids) {
  IntTensor r({ids.numel()});
  for (int64_t i = 0; i < ids.numel(); ++i) r.data()[i] = values.data()[ids.data()[i]];
  return r;
}

bool same(const IntTensor& a, const IntTensor& b) {
  return a.numel() == b.numel() && std::equal(a.begin(), a.end(), b.begin());
}

// Decoding with per-layer key/value caches: each step embeds one token per row,
// runs every decoder layer's cached step and the output projection. Each row's
// memory is its source's; beam pruning within a source leaves the memory as it is.
class CachedDecodeState : public DecodeState {
 public:
  // memory: [N,S,D] (row n: source n), src_len: [N]
  CachedDecodeState(Transformer& m, const Tensor& memory, const IntTensor& src_len)
      : m_(m), src_len_(src_len), row_source_({src_len.numel()}), self_(m.decoder->layer.size()) {
    for (auto& l : m.decoder->layer) mem_.push_back(l->multihead_attn->project_memory(memory));
    for (int64_t n = 0; n < src_len.numel(); ++n) row_source_.data()[n] = int32_t(n);
  }

  StepOutput step(const IntTensor& tokens) override {
    NoGrad ng;
    const int64_t K = tokens.numel(), D = m_.options.d_model;
    Tensor x = m_.embed(*m_.tgt_embedding, tokens.reshape({K, 1}), t_).value().reshape({K, D});
    StepOutput r;
    for (size_t i = 0; i < self_.size(); ++i)
      x = m_.decoder->layer[i]->step(x, self_[i], mem_[i], &src_len_,
                                     i + 1 == self_.size() ? &r.head_attention : nullptr);
    Var h(x);
    if (m_.decoder->norm) h = m_.decoder->norm->forward(h);
    r.logp = log_softmax(m_.out->forward(h)).value();
    r.attention = mean(Var(r.head_attention), {1}).value();
    ++t_;
    return r;
  }

  void select(const IntTensor& rows) override {
    for (KVCache& c : self_)
      if (c.k.defined()) c.select_rows(rows);
    IntTensor sources = gather(row_source_, rows);
    if (same(sources, row_source_)) return;  // the same sources in the same rows
    for (KVCache& c : mem_) c.select_rows(rows);
    src_len_ = gather(src_len_, rows);
    row_source_ = std::move(sources);
  }

 private:
  Transformer& m_;
  IntTensor src_len_, row_source_;
  std::vector<KVCache> self_, mem_;
  int64_t t_ = 0;
};

// The oracle of the cache: recomputes the decoder over each row's whole prefix every step.
class FullDecodeState : public DecodeState {
 public:
  FullDecodeState(Transformer& m, const Var& memory, const IntTensor& src_len)
      : m_(m), memory_(memory), src_len_(src_len), prefix_(size_t(src_len.numel())) {}

  StepOutput step(const IntTensor& tokens) override {
    NoGrad ng;
    const int64_t K = tokens.numel();
    for (int64_t k = 0; k < K; ++k) prefix_[size_t(k)].push_back(tokens.data()[k]);
    const int64_t T = int64_t(prefix_[0].size());
    IntTensor ids({K, T});
    for (int64_t k = 0; k < K; ++k) std::copy_n(prefix_[size_t(k)].data(), T, ids.data() + k * T);
    Var w;
    Var h = m_.decoder->forward_bf(m_.embed(*m_.tgt_embedding, ids), memory_, {nullptr, Tensor(), true},
                                   {&src_len_, Tensor(), false}, &w);
    h = slice(h, 1, T - 1, T);  // [K,1,D]
    StepOutput r;
    r.logp = log_softmax(m_.out->forward(h)).value().reshape({K, -1});
    const int64_t NH = w.size(1), S = w.size(3);
    r.head_attention = slice(w.value(), 2, T - 1, T).reshape({K, NH, S});
    r.attention = mean(Var(r.head_attention), {1}).value();
    return r;
  }

  void select(const IntTensor& rows) override {
    std::vector<std::vector<int32_t>> p;
    for (int64_t k = 0; k < rows.numel(); ++k) p.push_back(prefix_[size_t(rows.data()[k])]);
    prefix_ = std::move(p);
    memory_ = index_select(memory_, rows);
    src_len_ = gather(src_len_, rows);
  }

 private:
  Transformer& m_;
  Var memory_;
  IntTensor src_len_;
  std::vector<std::vector<int32_t>> prefix_;
};

}  // namespace

Transformer::Transformer(const TransformerOptions& opt, Generator& gen) : options(opt), gen_(&gen) {
  validate(opt);
  const int64_t D = opt.d_model;
  const TransformerLayerOptions l =
      layer_options(D, opt.nhead, opt.dim_feedforward, opt.dropout, opt.activation, opt.norm_first);
  validate(l, "Transformer");
  src_embedding = register_module("src_embedding", scaled_embedding(opt.src_vocab, D, opt.pad, gen));
  tgt_embedding = register_module("tgt_embedding", scaled_embedding(opt.tgt_vocab, D, opt.pad, gen));
  positional = register_module("positional", make_positional(opt.positional, D, opt.max_len, gen));
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(l, opt.num_encoder_layers, true, gen));
  decoder = register_module("decoder", std::make_shared<TransformerDecoder>(l, opt.num_decoder_layers, true, gen));
  out = register_module("out", std::make_shared<Linear>(LinearOptions{D, opt.tgt_vocab}, gen));
}

Var Transformer::embed(Embedding& e, const IntTensor& ids, int64_t offset) {
  // ids: [B,T] -> [B,T,D]
  Var x = e.forward(ids) * std::sqrt(float(options.d_model));
  x = positional->forward(x, offset);
  return dropout(x, options.dropout, training(), *gen_);
}

Var Transformer::encode(const IntTensor& src_ids, const IntTensor& src_len) {
  check(src_ids.dim() == 2, "Transformer: src_ids must be [B,S], got ", src_ids.shape());
  check(src_len.dim() == 1 && src_len.size(0) == src_ids.size(0), "Transformer: src_len must be [B] = [",
        src_ids.size(0), "], got ", src_len.shape());
  for (int64_t b = 0; b < src_len.numel(); ++b)
    check(src_len.data()[b] >= 1 && src_len.data()[b] <= src_ids.size(1), "Transformer: src_len[", b,
          "] = ", src_len.data()[b], " out of range [1,", src_ids.size(1), "]");
  check_ids(src_ids, options.src_vocab, "Transformer src_ids");
  return encoder->forward_bf(embed(*src_embedding, src_ids), {&src_len, Tensor(), false});
}

Seq2SeqOutput Transformer::forward_teacher(const IntTensor& src_ids, const IntTensor& src_len,
                                           const IntTensor& tgt_in) {
  // src_ids: [B,S], src_len: [B], tgt_in: [B,T] -> logits [B,T,V], attention [B,T,S]
  check(tgt_in.dim() == 2 && src_ids.dim() == 2 && tgt_in.size(0) == src_ids.size(0) &&
            tgt_in.size(1) >= 1,
        "Transformer: tgt_in must be [B,T] with the source's B, got src ", src_ids.shape(),
        " and tgt_in ", tgt_in.shape());
  check_ids(tgt_in, options.tgt_vocab, "Transformer tgt_in");
  Var memory = encode(src_ids, src_len);
  Var w;
  const bool want_w = !grad_enabled();  // weights are for inspection: not while training
  Var h = decoder->forward_bf(embed(*tgt_embedding, tgt_in), memory, {nullptr, Tensor(), true},
                              {&src_len, Tensor(), false}, want_w ? &w : nullptr);
  Seq2SeqOutput r;
  r.logits = out->forward(h);
  if (want_w) r.attention = mean(w, {1}).value();
  return r;
}

Var Transformer::loss(const IntTensor& src_ids, const IntTensor& src_len, const IntTensor& tgt_in,
                      const IntTensor& tgt_out) {
  check(tgt_out.shape() == tgt_in.shape(), "Transformer: tgt_out must match tgt_in ", tgt_in.shape(),
        ", got ", tgt_out.shape());
  Var logits = forward_teacher(src_ids, src_len, tgt_in).logits;
  return cross_entropy(reshape(logits, {-1, options.tgt_vocab}), tgt_out.reshape({-1}), options.pad);
}

std::unique_ptr<DecodeState> Transformer::start_decoding(const IntTensor& src_ids,
                                                         const IntTensor& src_len, int64_t K,
                                                         bool cached) {
  check(K >= 1, "Transformer::start_decoding: K must be >= 1, got ", K);
  NoGrad ng;
  Var memory = encode(src_ids, src_len);  // [N,S,D], each source once
  std::unique_ptr<DecodeState> st;
  if (cached)
    st = std::make_unique<CachedDecodeState>(*this, memory.value(), src_len);
  else
    st = std::make_unique<FullDecodeState>(*this, memory, src_len);
  const int64_t N = src_ids.size(0);
  if (K > 1) {  // copy each source's rows K times: row n*K + k reads source n
    IntTensor rows({N * K});
    for (int64_t r = 0; r < N * K; ++r) rows.data()[r] = int32_t(r / K);
    st->select(rows);
  }
  return st;
}

std::string Transformer::describe() const {
  const auto& o = options;
  std::ostringstream s;
  s << "Transformer(d_model=" << o.d_model << ", nhead=" << o.nhead
    << ", num_encoder_layers=" << o.num_encoder_layers
    << ", num_decoder_layers=" << o.num_decoder_layers << ", dim_feedforward=" << o.dim_feedforward
    << ", dropout=" << o.dropout << ", activation=" << enum_name(o.activation)
    << ", norm_first=" << (o.norm_first ? "true" : "false")
    << ", positional=" << enum_name(o.positional) << ")";
  return s.str();
}

// ---- the causal language model ----------------------------------------------------------

TransformerLM::TransformerLM(const TransformerLMOptions& opt, Generator& gen) : options(opt), gen_(&gen) {
  check(opt.vocab >= 1, "TransformerLM: vocab must be >= 1, got ", opt.vocab);
  check(opt.num_layers >= 1 && opt.max_len >= 1, "TransformerLM: num_layers and max_len must be >= 1, got ",
        opt.num_layers, " and ", opt.max_len);
  check(opt.pad >= 0 && opt.pad < opt.vocab, "TransformerLM: pad id ", opt.pad, " out of range [0,",
        opt.vocab, ")");
  const int64_t D = opt.d_model;
  const TransformerLayerOptions l =
      layer_options(D, opt.nhead, opt.dim_feedforward, opt.dropout, opt.activation, opt.norm_first);
  validate(l, "TransformerLM");
  embedding = register_module("embedding", scaled_embedding(opt.vocab, D, opt.pad, gen));
  positional = register_module("positional", make_positional(opt.positional, D, opt.max_len, gen));
  auto list = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < opt.num_layers; ++i) {
    layer.push_back(std::make_shared<TransformerEncoderLayer>(l, gen));
    list->push_back(layer.back());
  }
  if (opt.norm_first) norm = register_module("norm", std::make_shared<LayerNorm>(LayerNormOptions{D}));
  lm_head = register_module("lm_head", std::make_shared<Linear>(LinearOptions{D, opt.vocab}, gen));
}

Var TransformerLM::forward(const IntTensor& ids) {
  // ids: [B,T] -> logits [B,T,V]
  check(ids.dim() == 2 && ids.size(1) >= 1, "TransformerLM: ids must be [B,T], got ", ids.shape());
  check_ids(ids, options.vocab, "TransformerLM ids");
  Var x = positional->forward(embedding->forward(ids) * std::sqrt(float(options.d_model)));
  x = dropout(x, options.dropout, training(), *gen_);
  for (auto& l : layer) x = l->forward_bf(x, {nullptr, Tensor(), true});
  if (norm) x = norm->forward(x);
  return lm_head->forward(x);
}

Var TransformerLM::loss(const IntTensor& ids, const IntTensor& targets) {
  check(targets.shape() == ids.shape(), "TransformerLM: targets must match ids ", ids.shape(), ", got ",
        targets.shape());
  return cross_entropy(reshape(forward(ids), {-1, options.vocab}), targets.reshape({-1}), options.pad);
}

std::vector<int32_t> TransformerLM::generate(const std::vector<int32_t>& prefix, int64_t n,
                                             float temperature, Generator* gen) {
  check(!prefix.empty(), "TransformerLM::generate: empty prefix");
  check(n >= 0 && int64_t(prefix.size()) + n <= options.max_len + 1, "TransformerLM::generate: prefix ",
        prefix.size(), " + ", n, " tokens exceed max_len ", options.max_len);
  check_ids(IntTensor::from({int64_t(prefix.size())}, prefix), options.vocab,
            "TransformerLM::generate prefix");
  NoGrad ng;
  const int64_t D = options.d_model, V = options.vocab;
  std::vector<KVCache> caches(layer.size());
  int64_t pos = 0;
  // One token through every layer's cached step -> logits [V].
  auto step = [&](int32_t tok) {
    Var e = embedding->forward(IntTensor::from({1, 1}, {tok})) * std::sqrt(float(D));
    Tensor x = positional->forward(e, pos++).value().reshape({1, D});
    for (size_t i = 0; i < layer.size(); ++i) x = layer[i]->step(x, caches[i]);
    Var h(x);
    if (norm) h = norm->forward(h);
    return lm_head->forward(h).value();
  };
  Tensor logits;
  for (int32_t tok : prefix) logits = step(tok);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i) {
    int32_t next;
    if (temperature <= 0.f || gen == nullptr) {
      next = argmax(logits.data(), V);
    } else {  // sample softmax(logits / temperature) by inverting the CDF
      Tensor p = softmax(Var(logits) * (1.f / temperature)).value();
      const float u = gen->next_uniform();
      double c = 0;
      next = int32_t(V - 1);
      for (int64_t v = 0; v < V; ++v)
        if ((c += p.data()[v]) > u) {
          next = int32_t(v);
          break;
        }
    }
    out.push_back(next);
    if (i + 1 < n) logits = step(next);
  }
  return out;
}

std::string TransformerLM::describe() const {
  const auto& o = options;
  std::ostringstream s;
  s << "TransformerLM(vocab=" << o.vocab << ", d_model=" << o.d_model << ", nhead=" << o.nhead
    << ", num_layers=" << o.num_layers << ", dim_feedforward=" << o.dim_feedforward
    << ", dropout=" << o.dropout << ", activation=" << enum_name(o.activation)
    << ", norm_first=" << (o.norm_first ? "true" : "false")
    << ", positional=" << enum_name(o.positional) << ")";
  return s.str();
}

// ---- named forward (nn/forward_io.h) ----------------------------------------------

NamedOutputs TransformerEncoderLayer::forward_named(NamedInputs& in) {
  const Var src = in.tensor("src");
  const IntTensor* len = in.optional_ids("src_key_padding_mask");
  return {{"output", forward(src, {len, Tensor(), in.flag("is_causal")})}};
}

NamedOutputs TransformerDecoderLayer::forward_named(NamedInputs& in) {
  const Var tgt = in.tensor("tgt"), memory = in.tensor("memory");
  const AttentionMasks tgt_masks{in.optional_ids("tgt_key_padding_mask"), Tensor(),
                                 in.flag("tgt_is_causal")};
  const AttentionMasks memory_masks{in.optional_ids("memory_key_padding_mask"), Tensor(), false};
  return {{"output", forward(tgt, memory, tgt_masks, memory_masks)}};
}

NamedOutputs TransformerEncoder::forward_named(NamedInputs& in) {
  const Var src = in.tensor("src");
  const IntTensor* len = in.optional_ids("src_key_padding_mask");
  return {{"output", forward(src, {len, Tensor(), in.flag("is_causal")})}};
}

NamedOutputs Transformer::forward_named(NamedInputs& in) {
  const IntTensor &src = in.ids("src"), &len = in.ids("src_len"), &tgt = in.ids("tgt");
  Seq2SeqOutput o = forward_teacher(src, len, tgt);
  if (!o.attention.defined()) {  // forward_teacher skips the map while gradients are on
    NoGrad no_grad;
    o.attention = forward_teacher(src, len, tgt).attention;
  }
  // The attention map is a plain tensor (for inspection): it carries no gradient.
  return {{"logits", o.logits}, {"attention", Var(o.attention)}};
}

NamedOutputs TransformerLM::forward_named(NamedInputs& in) {
  return {{"logits", forward(in.ids("input"))}};
}

}  // namespace qkv
