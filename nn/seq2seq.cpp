// Seq2Seq encoder-decoder: the encoder, one decoder step for each variant
// (none / peeky, Luong, Bahdanau), teacher forcing, greedy and beam search.
// Legend: B batch, S source, T target, E embed, H hidden, ND directions, V vocab.
#include "nn/seq2seq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "autograd/ops.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "nn/decoding.h"

namespace qkv {
namespace {

int64_t dirs(const Seq2SeqOptions& o) { return o.bidirectional ? 2 : 1; }
bool is_lstm(const Seq2SeqOptions& o) { return o.rnn == RNNKind::lstm; }

void validate(const Seq2SeqOptions& o) {
  check(o.src_vocab >= 1 && o.tgt_vocab >= 1, "Seq2Seq: src_vocab and tgt_vocab must be >= 1, got ",
        o.src_vocab, " and ", o.tgt_vocab);
  check(o.embed >= 1 && o.hidden >= 1 && o.layers >= 1,
        "Seq2Seq: embed, hidden and layers must be >= 1, got ", o.embed, ", ", o.hidden, ", ",
        o.layers);
  check(o.dropout >= 0.f && o.dropout < 1.f, "Seq2Seq: dropout must be in [0,1), got ",
        o.dropout);
  for (auto [name, id] : {std::pair{"pad", o.pad}, {"bos", o.bos}, {"eos", o.eos}})
    check(id >= 0 && id < o.tgt_vocab, "Seq2Seq: ", name, " id ", id, " out of range [0,",
          o.tgt_vocab, ")");
  check(o.pad < o.src_vocab, "Seq2Seq: pad id ", o.pad, " out of range of src_vocab ", o.src_vocab);
  check(!o.peeky || o.attention == Seq2SeqAttention::none,
        "Seq2Seq: peeky applies to attention \"none\" only, got attention '",
        enum_name(o.attention), "'");
  const bool dotlike = o.score == Score::dot || o.score == Score::scaled_dot;
  check(o.attention == Seq2SeqAttention::none || !dotlike || dirs(o) == 1, "Seq2Seq: score ",
        score_name(o.score), " needs query size == key size, but a ",
        "bidirectional encoder gives keys of 2H = ", 2 * o.hidden, " vs decoder H = ", o.hidden,
        " (use general, concat or additive)");
}

// [B,T] ids -> [T,B], the order the recurrent ops run in.
IntTensor time_major(const IntTensor& ids) {
  const int64_t B = ids.size(0), T = ids.size(1);
  IntTensor r({T, B});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) r.data()[t * B + b] = ids.data()[b * T + t];
  return r;
}

// Column t of a [B,T] id tensor -> [B].
IntTensor column(const IntTensor& ids, int64_t t) {
  return slice(ids, 1, t, t + 1).reshape({ids.size(0)});
}

// Each row's first len[b] ids reversed, padding left in place.
IntTensor reverse_within(const IntTensor& ids, const IntTensor& len) {
  IntTensor r = ids.clone();
  const int64_t B = ids.size(0), S = ids.size(1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < len.data()[b]; ++j)
      r.data()[b * S + j] = ids.data()[b * S + len.data()[b] - 1 - j];
  return r;
}

// a: [B,T,S] weights over reversed sources -> original order (row b has len[b]).
Tensor unreverse_attention(const Tensor& a, const IntTensor& len) {
  const int64_t B = a.size(0), T = a.size(1), S = a.size(2);
  Tensor r = Tensor::zeros(a.shape());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < len.data()[b]; ++j)
        r.data()[(b * T + t) * S + j] = a.data()[(b * T + t) * S + len.data()[b] - 1 - j];
  return r;
}

void check_source(const IntTensor& src, const IntTensor& len, const Seq2SeqOptions& o) {
  check(src.dim() == 2, "Seq2Seq: src_ids must be [B,S], got ", src.shape());
  check(len.dim() == 1 && len.size(0) == src.size(0), "Seq2Seq: src_len must be [B] = [",
        src.size(0), "], got ", len.shape());
  for (int64_t b = 0; b < len.numel(); ++b)
    check(len.data()[b] >= 1 && len.data()[b] <= src.size(1), "Seq2Seq: src_len[", b,
          "] = ", len.data()[b], " out of range [1,", src.size(1), "]");
  check_ids(src, o.src_vocab, "Seq2Seq src_ids");
}

}  // namespace

// ---- encoder ----------------------------------------------------------------------

Seq2SeqEncoder::Seq2SeqEncoder(const Seq2SeqOptions& o, Generator& gen)
    : dropout_(o.dropout), gen_(&gen) {
  embedding = register_module(
      "embedding", std::make_shared<Embedding>(EmbeddingOptions{o.src_vocab, o.embed, o.pad}, gen));
  RNNOptions r{o.embed, o.hidden, o.layers, true, /*batch_first=*/true, o.dropout, o.bidirectional};
  rnn = is_lstm(o)
            ? register_module("rnn", std::shared_ptr<RNNBase>(std::make_shared<LSTM>(r, gen)))
            : register_module("rnn", std::shared_ptr<RNNBase>(std::make_shared<GRU>(r, gen)));
}

EncoderOutput Seq2SeqEncoder::forward(const IntTensor& ids, const IntTensor& lengths) {
  // ids: [B,S] -> outputs [B,S,ND*H], h/c [B,ND*H]
  const bool drop = training() && dropout_ > 0.f;
  RNNOutput r;
  if (rnn->kind == RNNKind::lstm && !drop && embedding->options.num_embeddings < ids.numel()) {
    // a vocabulary smaller than the B*S rows: layer 0's gates of each
    // direction are a lookup in a projected embedding table (input_gates)
    const IntTensor ids_t = time_major(ids);  // [S,B]
    std::vector<Var> xg;
    for (int64_t dir = 0; dir < (rnn->options.bidirectional ? 2 : 1); ++dir) {
      const RNNBase::Weights& w = rnn->weights()[size_t(dir)];
      xg.push_back(input_gates(ids_t, embedding->weight, embedding->options.padding_idx, w.w_ih,
                               w.b_ih, w.b_hh, true, 0.f, nullptr));
    }
    r = rnn->forward_gates(xg, &lengths);
  } else {
    Var emb = dropout(embedding->forward(ids), dropout_, training(), *gen_);  // [B,S,E]
    r = rnn->forward(emb, &lengths);
  }
  const int64_t ND = rnn->options.bidirectional ? 2 : 1, L = rnn->options.num_layers;
  const int64_t B = ids.size(0), H = rnn->options.hidden_size;
  auto last_layer = [&](const Var& s) {  // [L*ND,B,H] -> [B,ND*H]
    std::vector<Var> parts;
    for (int64_t dir = 0; dir < ND; ++dir)
      parts.push_back(reshape(slice(s, 0, (L - 1) * ND + dir, (L - 1) * ND + dir + 1), {B, H}));
    return ND == 1 ? parts[0] : concat(parts, 1);
  };
  EncoderOutput e;
  e.outputs = r.output;
  e.h = last_layer(r.h_n);
  if (r.c_n.defined()) e.c = last_layer(r.c_n);
  return e;
}

std::string Seq2SeqEncoder::describe() const { return "Seq2SeqEncoder"; }

// ---- decoder ----------------------------------------------------------------------

Seq2SeqDecoder::Seq2SeqDecoder(const Seq2SeqOptions& o, Generator& gen)
    : options(o), gen_(&gen) {
  const int64_t H = o.hidden, K = dirs(o) * H;  // K: encoder output (key) size
  embedding = register_module(
      "embedding", std::make_shared<Embedding>(EmbeddingOptions{o.tgt_vocab, o.embed, o.pad}, gen));
  int64_t in = o.embed;
  if (o.attention == Seq2SeqAttention::luong && o.input_feeding) in += H;  // h~_{t-1}
  if (o.attention == Seq2SeqAttention::bahdanau) in += K;                  // context c_t
  if (o.peeky) in += K;                                    // encoder summary
  if (is_lstm(o))
    lstm = register_module("cell", std::make_shared<LSTMCell>(in, H, gen));
  else
    gru = register_module("cell", std::make_shared<GRUCell>(in, H, gen));
  if (o.attention != Seq2SeqAttention::none)
    attention = register_module(
        "attention", std::make_shared<Attention>(AttentionOptions{o.score, H, K, H, false}, gen));
  if (o.attention == Seq2SeqAttention::luong)
    combine =
        register_module("combine", std::make_shared<Linear>(LinearOptions{K + H, H, false}, gen));
}

bool Seq2SeqDecoder::fused_luong() const {
  const Score s = options.score;
  return fused && lstm && options.attention == Seq2SeqAttention::luong &&
         (s == Score::dot || s == Score::scaled_dot || s == Score::general);
}

bool Seq2SeqDecoder::fused_bahdanau() const {
  return fused && lstm && options.attention == Seq2SeqAttention::bahdanau &&
         options.score == Score::additive && !attention->W->bias.defined();
}

// The output layer's weight^T and bias, the fused decoder's weights, and the
// embeddings' gates table (emb W_x^T + b_ih + b_hh, [V,4H]; none for a
// vocabulary too large to hold it: each step then projects its own rows).
struct Seq2SeqDecodePack {
  Seq2SeqDecodePack(const Seq2SeqDecoder& d, const Linear& out)
      : out_t(true, out.options.in_features, out.options.out_features, out.weight.value().data(),
              out.options.in_features),
        out_bias(out.bias.defined() ? out.bias.value().data() : nullptr) {
    const LSTMCell& cell = *d.lstm;
    const int64_t E = d.options.embed, V = d.options.tgt_vocab;
    if (d.fused_luong())
      luong = std::make_unique<LuongDecoderPack>(cell.weight_ih, cell.weight_hh,
                                                 d.combine->weight, E);
    else
      bahdanau = std::make_unique<BahdanauDecoderPack>(cell.weight_ih, cell.weight_hh,
                                                       d.attention->W->weight, E);
    if (V * cell.weight_ih.size(0) <= kMaxTableFloats) {
      NoGrad ng;
      table = input_gate_table(d.embedding->weight, d.options.pad, cell.weight_ih, cell.bias_ih,
                               cell.bias_hh)
                  .value();
    }
  }
  static constexpr int64_t kMaxTableFloats = int64_t(16) << 20;  // 64 MiB
  std::unique_ptr<LuongDecoderPack> luong;  // exactly one of the two
  std::unique_ptr<BahdanauDecoderPack> bahdanau;
  PackedB out_t;          // [H',V]
  const float* out_bias;  // [V] or null
  Tensor table;           // [V,4H] or undefined
};

void Seq2Seq::pack_for_decoding(EncoderMemory& mem) const {
  if (decoder->fused_luong() || decoder->fused_bahdanau())
    mem.pack = std::make_shared<Seq2SeqDecodePack>(*decoder, *out);
}

namespace {

// The fused Luong decoder over xg: [T,B,4H] -> {h~ [B,T,H], weights [B,T,S]}; updates st.
// Its scores scale * P h are the composite's: general P = W k (prepared), dot P = k.
LuongDecoderOutput luong_fused(Seq2SeqDecoder& d, const Var& xg, DecoderState& st,
                               const EncoderMemory& mem) {
  const Score s = d.options.score;
  const Var& P = s == Score::general ? mem.keys.proj : mem.keys.keys;
  const float scale =
      s == Score::scaled_dot ? 1.f / std::sqrt(float(d.attention->options.key_size)) : 1.f;
  LSTMCell& cell = *d.lstm;
  LuongDecoderOutput r = luong_decoder(
      xg, st.h, st.c, d.options.input_feeding ? st.feed : Var(), cell.weight_ih, cell.weight_hh, P,
      mem.outputs, mem.keys.mask, d.combine->weight, scale,
      mem.pack ? mem.pack->luong.get() : nullptr);
  const int64_t T = xg.size(0), B = xg.size(1), H = d.options.hidden;
  st.h = r.h;
  st.c = r.c;
  st.feed = reshape(T == 1 ? r.ht : slice(r.ht, 1, T - 1, T), {B, H});
  return r;
}

// The fused Bahdanau decoder over xg: [T,B,4H] -> {[h | ctx] [B,T,H+K], weights [B,T,S]};
// updates st. Its scores are the composite's: v . tanh(W h + U k), U k prepared.
BahdanauDecoderOutput bahdanau_fused(Seq2SeqDecoder& d, const Var& xg, DecoderState& st,
                                     const EncoderMemory& mem) {
  LSTMCell& cell = *d.lstm;
  Attention& a = *d.attention;
  BahdanauDecoderOutput r = bahdanau_decoder(
      xg, st.h, st.c, cell.weight_ih, cell.weight_hh, a.W->weight, mem.keys.proj, a.v->weight,
      mem.outputs, mem.keys.mask, mem.pack ? mem.pack->bahdanau.get() : nullptr);
  st.h = r.h;
  st.c = r.c;
  return r;
}

// Runs whichever fused decoder applies over xg [T,B,4H]: -> {out's input [B,T,H'], weights}.
std::pair<Var, Var> run_fused(Seq2SeqDecoder& d, const Var& xg, DecoderState& st,
                              const EncoderMemory& mem) {
  if (d.fused_luong()) {
    LuongDecoderOutput r = luong_fused(d, xg, st, mem);
    return {r.ht, r.weights};
  }
  BahdanauDecoderOutput r = bahdanau_fused(d, xg, st, mem);
  return {r.out, r.weights};
}

}  // namespace

Var Seq2SeqDecoder::features(const Var& emb, DecoderState& st, const EncoderMemory& mem,
                             Var* weights) {
  // emb: [B,E]; st.h, st.c, st.feed: [B,H]; mem.outputs: [B,S,K] -> [B,H'] (out's input)
  auto cell = [&](const Var& x) {
    if (lstm) {
      CellState s = lstm->forward(x, {st.h, st.c});
      st.h = s.h;
      st.c = s.c;
    } else {
      st.h = gru->forward(x, st.h);
    }
  };
  if (options.attention == Seq2SeqAttention::luong) {
    // Luong: step first, attend with the new h, h~ = tanh(W_c [c; h]), predict from h~.
    cell(options.input_feeding ? concat({emb, st.feed}, 1) : emb);
    AttentionResult a = attention->forward(st.h, mem.keys, mem.outputs);
    Var ht = tanh(combine->forward(concat({a.context, st.h}, 1)));  // [B,H]
    st.feed = ht;
    *weights = a.weights;
    return ht;
  }
  if (options.attention == Seq2SeqAttention::bahdanau) {
    // Bahdanau: attend from the previous state s_{t-1}, feed [y; c], predict from [s_t; c].
    AttentionResult a = attention->forward(st.h, mem.keys, mem.outputs);
    cell(concat({emb, a.context}, 1));
    *weights = a.weights;
    return concat({st.h, a.context}, 1);
  }
  cell(options.peeky ? concat({emb, mem.summary}, 1) : emb);
  return st.h;
}

DecoderStep Seq2SeqDecoder::step(const IntTensor& tokens, DecoderState& st,
                                 const EncoderMemory& mem, Linear& out) {
  // tokens: [B] -> logits [B,V], weights [B,S]
  DecoderStep r;
  if (fused_luong() || fused_bahdanau()) {
    const int64_t B = tokens.size(0);
    auto [o, w] = run_fused(*this, input_gates(tokens.reshape({B, 1}), mem), st, mem);
    r.weights = reshape(w, {B, w.size(2)});
    Var feat = reshape(o, {B, o.size(2)});  // [B,H']
    if (mem.pack && !grad_enabled() && mem.pack->out_t.B == out.weight.value().data()) {
      // logits = feat out^T + bias on the packed weight (no tape to record)
      Tensor logits({B, out.options.out_features});
      GemmEpilogue ep;
      ep.col_bias = mem.pack->out_bias;
      gemm(B, 1.f, feat.value().data(), feat.size(1), mem.pack->out_t, 0.f, logits.data(),
           logits.size(1), ep);
      r.logits = Var(logits);
      return r;
    }
    r.logits = out.forward(feat);
    return r;
  }
  r.logits = out.forward(features(embedding->forward(tokens), st, mem, &r.weights));
  return r;
}

Var Seq2SeqDecoder::run(const IntTensor& tokens, DecoderState& st, const EncoderMemory& mem,
                        Tensor* weights) {
  // tokens: [B,T] -> [B,T,H'], weights [B,T,S]
  auto embed = [&](const IntTensor& ids) {  // [B,T] -> [B,T,E] or [B] -> [B,E]
    return dropout(embedding->forward(ids), options.dropout, training(), *gen_);
  };
  if (fused_luong() || fused_bahdanau()) {
    auto [o, w] = run_fused(*this, input_gates(tokens, mem), st, mem);
    if (weights) *weights = w.value();
    return o;
  }
  std::vector<Var> feats;
  std::vector<Tensor> ws;
  for (int64_t t = 0; t < tokens.size(1); ++t) {
    Var w;
    feats.push_back(features(embed(column(tokens, t)), st, mem, &w));
    if (w.defined()) ws.push_back(w.value());
  }
  if (weights && !ws.empty()) *weights = stack(ws, 1);
  return stack(feats, 1);
}

Var Seq2SeqDecoder::input_gates(const IntTensor& tokens, const EncoderMemory& mem) {
  // tokens: [B,T] -> [T,B,4H]
  const int64_t B = tokens.size(0), T = tokens.size(1), V = options.tgt_vocab;
  const IntTensor ids = time_major(tokens);
  const Tensor* table = mem.pack && mem.pack->table.defined() ? &mem.pack->table : nullptr;
  if (table && !grad_enabled()) {  // decoding: rows of the pack's table
    check_ids(ids, V, "Seq2Seq decoder tokens");
    return Var(qkv::index_select(*table, ids));
  }
  const bool drop = training() && options.dropout > 0.f;
  return qkv::input_gates(ids, embedding->weight, options.pad, lstm->weight_ih, lstm->bias_ih,
                          lstm->bias_hh, !drop && V < B * T, drop ? options.dropout : 0.f, gen_);
}

std::string Seq2SeqDecoder::describe() const {
  return std::string("Seq2SeqDecoder(attention=") + enum_name(options.attention) + ")";
}

// ---- the model --------------------------------------------------------------------

Seq2Seq::Seq2Seq(const Seq2SeqOptions& opt, Generator& gen) : options(opt), gen_(&gen) {
  validate(opt);
  const int64_t H = opt.hidden, K = dirs(opt) * H;
  encoder = register_module("encoder", std::make_shared<Seq2SeqEncoder>(opt, gen));
  bridge_h = register_module("bridge_h", std::make_shared<Linear>(LinearOptions{K, H, true}, gen));
  if (is_lstm(opt))
    bridge_c =
        register_module("bridge_c", std::make_shared<Linear>(LinearOptions{K, H, true}, gen));
  decoder = register_module("decoder", std::make_shared<Seq2SeqDecoder>(opt, gen));
  const int64_t out_in = opt.attention == Seq2SeqAttention::bahdanau ? H + K : H;
  out = register_module("out",
                        std::make_shared<Linear>(LinearOptions{out_in, opt.tgt_vocab, true}, gen));
}

EncoderMemory Seq2Seq::encode(const IntTensor& src_ids, const IntTensor& src_len,
                              DecoderState& st) {
  check_source(src_ids, src_len, options);
  IntTensor ids = options.reverse_source ? reverse_within(src_ids, src_len) : src_ids;
  EncoderOutput e = encoder->forward(ids, src_len);
  st.h = tanh(bridge_h->forward(e.h));
  if (bridge_c) st.c = bridge_c->forward(e.c);
  if (options.attention == Seq2SeqAttention::luong && options.input_feeding)
    st.feed = Var(Tensor::zeros({src_ids.size(0), options.hidden}));
  EncoderMemory m;
  m.outputs = dropout(e.outputs, options.dropout, training(), *gen_);  // what attention reads
  m.summary = e.h;
  if (decoder->attention) m.keys = decoder->attention->prepare(m.outputs, &src_len);
  return m;
}

Seq2SeqOutput Seq2Seq::forward_teacher(const IntTensor& src_ids, const IntTensor& src_len,
                                       const IntTensor& tgt_in) {
  // src_ids: [B,S], src_len: [B], tgt_in: [B,T] -> logits [B,T,V], attention [B,T,S]
  check(tgt_in.dim() == 2 && src_ids.dim() == 2 && tgt_in.size(0) == src_ids.size(0),
        "Seq2Seq: tgt_in must be [B,T] with the source's B, got src ", src_ids.shape(),
        " and tgt_in ", tgt_in.shape());
  check(tgt_in.size(1) >= 1, "Seq2Seq: tgt_in needs at least one step, got ", tgt_in.shape());
  check_ids(tgt_in, options.tgt_vocab, "Seq2Seq tgt_in");
  DecoderState st;
  EncoderMemory mem = encode(src_ids, src_len, st);
  // The output projection once over all B*T rows, after the recurrence.
  Seq2SeqOutput r;
  Var feat = decoder->run(tgt_in, st, mem, &r.attention);  // [B,T,H']
  r.logits = out->forward(dropout(feat, options.dropout, training(), *gen_));
  if (r.attention.defined() && options.reverse_source)
    r.attention = unreverse_attention(r.attention, src_len);
  return r;
}

Var Seq2Seq::loss(const IntTensor& src_ids, const IntTensor& src_len, const IntTensor& tgt_in,
                  const IntTensor& tgt_out) {
  check(tgt_out.shape() == tgt_in.shape(), "Seq2Seq: tgt_out must match tgt_in ", tgt_in.shape(),
        ", got ", tgt_out.shape());
  Var logits = forward_teacher(src_ids, src_len, tgt_in).logits;
  return cross_entropy(reshape(logits, {-1, options.tgt_vocab}), tgt_out.reshape({-1}),
                       options.pad);
}

// ---- decoding ---------------------------------------------------------------------

namespace {

void check_single(const IntTensor& src, int64_t max_len, const char* op) {
  check(src.dim() == 2 && src.size(0) == 1 && src.size(1) >= 1, "Seq2Seq::", op,
        ": src_ids must be [1,S], got ", src.shape());
  check(max_len >= 1, "Seq2Seq::", op, ": max_len must be >= 1, got ", max_len);
}

// ids: [R] -> values[ids[r]] for each r
IntTensor gather(const IntTensor& values, const IntTensor& ids) {
  IntTensor r({ids.numel()});
  for (int64_t i = 0; i < ids.numel(); ++i) r.data()[i] = values.data()[ids.data()[i]];
  return r;
}

}  // namespace

// The recurrent decoder as a DecodeState: R rows of (h, c, feed), each over its
// source's encoder memory (memory rows follow the state rows). Beam pruning reorders
// rows within a source, which leaves the memory as it is; only a source leaving the
// batch moves the memory.
class Seq2SeqDecodeState : public DecodeState {
 public:
  // st, mem: R rows; row_source: [R] the source of each row; src_len: [R]
  Seq2SeqDecodeState(Seq2Seq& m, DecoderState st, EncoderMemory mem, IntTensor row_source,
                     IntTensor src_len)
      : m_(m),
        st_(std::move(st)),
        mem_(std::move(mem)),
        row_source_(std::move(row_source)),
        src_len_(std::move(src_len)) {}

  StepOutput step(const IntTensor& tokens) override {
    // tokens: [R] -> logp [R,V], attention [R,S] in original source order
    DecoderStep s = m_.decoder->step(tokens, st_, mem_, *m_.out);
    StepOutput r;
    r.logp = log_softmax(s.logits).value();
    if (s.weights.defined()) {
      r.attention = s.weights.value();
      if (m_.options.reverse_source) {
        const int64_t R = r.attention.size(0), S = r.attention.size(1);
        r.attention = unreverse_attention(r.attention.reshape({R, 1, S}), src_len_).reshape({R, S});
      }
    }
    return r;
  }

  void select(const IntTensor& rows) override {
    const bool in_place = selects_in_place(rows);
    for (Var* v : {&st_.h, &st_.c, &st_.feed})
      if (v->defined()) select_rows(v->value_mut(), rows, in_place);
    IntTensor sources = gather(row_source_, rows);
    if (sources.numel() == row_source_.numel() &&
        std::equal(sources.begin(), sources.end(), row_source_.begin()))
      return;  // the same sources in the same rows: the memory stays
    // The attention keys are the encoder outputs themselves (prepare()): select them once.
    const bool keys_are_outputs =
        mem_.keys.keys.defined() && mem_.keys.keys.value().data() == mem_.outputs.value().data();
    for (Var* v : {&mem_.outputs, &mem_.summary, &mem_.keys.proj})
      if (v->defined()) select_rows(v->value_mut(), rows, in_place);
    if (keys_are_outputs)
      mem_.keys.keys = mem_.outputs;
    else if (mem_.keys.keys.defined())
      select_rows(mem_.keys.keys.value_mut(), rows, in_place);
    if (mem_.keys.mask.defined()) select_rows(mem_.keys.mask, rows, in_place);
    src_len_ = gather(src_len_, rows);
    row_source_ = std::move(sources);
  }

 private:
  Seq2Seq& m_;
  DecoderState st_;
  EncoderMemory mem_;
  IntTensor row_source_, src_len_;
};

std::unique_ptr<DecodeState> Seq2Seq::start_decoding(const IntTensor& src_ids,
                                                     const IntTensor& src_len, int64_t K) {
  check(K >= 1, "Seq2Seq::start_decoding: K must be >= 1, got ", K);
  NoGrad ng;
  EvalModeScope no_dropout(*this);  // decoding never drops
  DecoderState st;
  EncoderMemory mem = encode(src_ids, src_len, st);
  pack_for_decoding(mem);  // the weights every step reads, packed once
  const int64_t N = src_ids.size(0);
  IntTensor sources({N});
  for (int64_t n = 0; n < N; ++n) sources.data()[n] = int32_t(n);
  auto state =
      std::make_unique<Seq2SeqDecodeState>(*this, std::move(st), std::move(mem), sources, src_len);
  if (K > 1) {  // copy each source's rows K times: row n*K + k reads source n
    IntTensor rows({N * K});
    for (int64_t r = 0; r < N * K; ++r) rows.data()[r] = int32_t(r / K);
    state->select(rows);
  }
  return state;
}

float Seq2Seq::sequence_score(const IntTensor& src_ids, const std::vector<int32_t>& tokens,
                              float alpha) {
  check_single(src_ids, 1, "sequence_score");
  check(!tokens.empty(), "Seq2Seq::sequence_score: no tokens");
  check_ids(IntTensor::from({int64_t(tokens.size())}, tokens), options.tgt_vocab,
            "Seq2Seq::sequence_score tokens");
  NoGrad ng;
  EvalModeScope no_dropout(*this);  // decoding never drops
  const int64_t T = int64_t(tokens.size()), V = options.tgt_vocab;
  std::vector<int32_t> in = {options.bos};
  in.insert(in.end(), tokens.begin(), tokens.end() - 1);
  Var logits = forward_teacher(src_ids, IntTensor::from({1}, {int32_t(src_ids.size(1))}),
                               IntTensor::from({1, T}, in))
                   .logits;
  Tensor lp = log_softmax(logits).value();  // [1,T,V]
  double total = 0;
  for (int64_t t = 0; t < T; ++t) total += lp.data()[t * V + tokens[t]];
  return normalised_score(total, tokens.size(), alpha);
}

std::string Seq2Seq::describe() const {
  const auto& o = options;
  std::string s = std::string("Seq2Seq(rnn=") + enum_name(o.rnn) +
                  ", embed=" + std::to_string(o.embed) + ", hidden=" + std::to_string(o.hidden) +
                  ", layers=" + std::to_string(o.layers) +
                  ", bidirectional=" + (o.bidirectional ? "true" : "false") +
                  ", attention=" + enum_name(o.attention);
  if (o.attention != Seq2SeqAttention::none) s += std::string(", score=") + score_name(o.score);
  if (o.attention == Seq2SeqAttention::luong)
    s += std::string(", input_feeding=") + (o.input_feeding ? "true" : "false");
  if (o.peeky) s += ", peeky=true";
  if (o.reverse_source) s += ", reverse_source=true";
  if (o.dropout > 0.f) s += ", dropout=" + std::to_string(o.dropout);
  return s + ")";
}

// ---- named forward (nn/forward_io.h) ----------------------------------------------

NamedOutputs Seq2Seq::forward_named(NamedInputs& in) {
  const IntTensor &src = in.ids("src"), &len = in.ids("src_len"), &tgt = in.ids("tgt");
  Seq2SeqOutput o = forward_teacher(src, len, tgt);
  // The attention map is a plain tensor (for inspection): it carries no gradient.
  return {{"logits", o.logits}, {"attention", o.attention.defined() ? Var(o.attention) : Var()}};
}

// ---- Model: FLOPs ---------------------------------------------------------------------

double Seq2Seq::flops_per_step(const Batch& b, std::string* how) const {
  // Embedding lookups cost nothing; bridges run once per example.
  const double src_tokens = sum_lengths(b.src_len);
  const double tgt_tokens = double(count_tokens(b.tgt_out, options.pad));
  const double S = b.src.defined() ? double(b.src.size(1)) : 0;
  const double enc = matrix_weights(*encoder) - matrix_weights(*encoder->embedding);
  const double bridge = matrix_weights(*bridge_h) + (bridge_c ? matrix_weights(*bridge_c) : 0);
  const double dec =
      matrix_weights(*decoder) - matrix_weights(*decoder->embedding) + matrix_weights(*out);
  const double keys = double(options.hidden * (options.bidirectional ? 2 : 1));
  const double attn = options.attention == Seq2SeqAttention::none ? 0 : 2 * 2 * S * keys * tgt_tokens;
  if (how)
    *how = "6 x (" + human_count(enc) + " encoder weights x " + human_count(src_tokens) +
           " source tokens + " + human_count(dec) + " decoder weights x " +
           human_count(tgt_tokens) + " target tokens) + 3 x attention";
  return 6 * (enc * src_tokens + dec * tgt_tokens + bridge * double(b.size)) + 3 * attn;
}

}  // namespace qkv
