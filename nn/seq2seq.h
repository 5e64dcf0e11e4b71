// Seq2Seq: an RNN encoder-decoder (Sutskever et al. 2014 / Cho et al. 2014),
// optionally with Luong (2015) or Bahdanau (2015) attention, trained with
// teacher forcing and decoded greedily or with beam search.
//
// Encoder: Embedding + LSTM/GRU (batch_first, lengths, optionally
// bidirectional); the last layer's final states of both directions are
// concatenated ([B,ND*H]) and bridged to the decoder's initial state.
// Decoder: Embedding + one LSTMCell/GRUCell, stepped one token at a time
// (a single decoder layer, deliberately); the Luong and Bahdanau LSTM decoders run
// as one fused op over all steps (teacher forcing) or one step (decoding).
// Dropout (training mode only, as in Luong et al. 2015 / OpenNMT): on both
// embeddings, between encoder layers, on the encoder outputs (the memory the
// attention reads) and on the output layer's input (h~, h or [h; c]); never
// inside the recurrence, and never while decoding (greedy/beam, sequence_score).
// Not here: multi-layer decoders, coverage, scheduled sampling.
//
// Legend: B batch, S source time, T target time, E embed, H hidden,
// ND = 2 directions if bidirectional else 1, V target vocabulary.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/rnn.h"
#include "nn/seq_model.h"

namespace qkv {

class Generator;

enum class Seq2SeqAttention { none, luong, bahdanau };
inline constexpr EnumName<Seq2SeqAttention> kSeq2SeqAttentionNames[] = {
    {Seq2SeqAttention::none, "none"},
    {Seq2SeqAttention::luong, "luong"},
    {Seq2SeqAttention::bahdanau, "bahdanau"}};
constexpr std::span<const EnumName<Seq2SeqAttention>> enum_names(Seq2SeqAttention) {
  return kSeq2SeqAttentionNames;
}

struct Seq2SeqOptions {
  int64_t src_vocab = 0;
  int64_t tgt_vocab = 0;
  int64_t embed = 32;              // E, both embeddings
  int64_t hidden = 64;             // H, encoder (per direction) and decoder
  RNNKind rnn = RNNKind::lstm;     // encoder and decoder
  int64_t layers = 1;              // encoder layers
  bool bidirectional = false;      // encoder only
  Seq2SeqAttention attention = Seq2SeqAttention::none;
  Score score = Score::general;    // attention score (JSON default for bahdanau: additive)
  bool input_feeding = true;       // Luong: h~_{t-1} joins the next step's input
  bool peeky = false;              // no attention: the encoder summary joins every step's input
  bool reverse_source = false;     // Sutskever: feed each source backwards (within its length)
  float dropout = 0.f;             // in [0,1), training only (see above); 0: none
  int32_t pad = 0, bos = 1, eos = 2;
};

// The encoder: Embedding + LSTM/GRU ("encoder.embedding.weight",
// "encoder.rnn.weight_ih_l0", ...).
struct EncoderOutput {
  Var outputs;  // [B,S,ND*H], zero at padded steps
  Var h;        // [B,ND*H] last layer's final h, directions concatenated
  Var c;        // [B,ND*H] the same for the LSTM cell state (undefined for GRU)
};

class Seq2SeqEncoder : public Module {
 public:
  Seq2SeqEncoder(const Seq2SeqOptions& opt, Generator& gen);
  // ids: [B,S] (already reversed if reverse_source), lengths: [B] in [1,S]
  EncoderOutput forward(const IntTensor& ids, const IntTensor& lengths);
  std::string describe() const override;

  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<RNNBase> rnn;

 private:
  float dropout_;    // on the embeddings (the RNN drops between its layers)
  Generator* gen_;   // dropout masks
};

// What the decoder carries from one step to the next.
struct DecoderState {
  Var h;     // [B,H]
  Var c;     // [B,H] (LSTM only)
  Var feed;  // [B,H] Luong input feeding: the previous h~ (zeros at the start)
};

// Encoder results the decoder reads at every step.
struct Seq2SeqDecodePack;  // weights packed for decoding (seq2seq.cpp)
struct EncoderMemory {
  Var outputs;         // [B,S,ND*H]
  Var summary;         // [B,ND*H] final encoder state (peeky context)
  AttentionKeys keys;  // prepared from outputs (attention variants only)
  // Decoding only (Seq2Seq::pack_for_decoding): the decoder's and output
  // layer's weights packed once for all steps; null: each step packs its own.
  std::shared_ptr<const Seq2SeqDecodePack> pack;
};

struct DecoderStep {
  Var logits;   // [B,V]
  Var weights;  // [B,S] attention (undefined without attention)
};

// The decoder: Embedding + LSTMCell/GRUCell ("decoder.embedding.weight",
// "decoder.cell.weight_ih", "decoder.attention.*", "decoder.combine.weight").
class Seq2SeqDecoder : public Module {
 public:
  Seq2SeqDecoder(const Seq2SeqOptions& opt, Generator& gen);
  // tokens: [B] -> one step; updates st.
  DecoderStep step(const IntTensor& tokens, DecoderState& st, const EncoderMemory& mem,
                   Linear& out);
  // tokens: [B,T] -> the output projection's input of every step [B,T,H'] (H' = H, or
  // H + ND*H for Bahdanau), the attention [B,T,S] in *weights (if not null and
  // attending); updates st. The projection then runs once over all B*T rows.
  // In training mode the target embeddings go through dropout first.
  Var run(const IntTensor& tokens, DecoderState& st, const EncoderMemory& mem,
          Tensor* weights);
  // Whether the fused op luong_decoder (autograd/ops.h) computes the decoder:
  // an LSTM cell with Luong attention and a dot, scaled_dot or general score.
  bool fused_luong() const;
  // Whether the fused op bahdanau_decoder computes it: an LSTM cell with
  // Bahdanau attention and the additive score (without projection biases).
  bool fused_bahdanau() const;
  std::string describe() const override;

  // Use the fused op where it applies. false: the composite of modules and
  // primitives step by step (the fused op's oracle in the tests).
  bool fused = true;

  Seq2SeqOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<LSTMCell> lstm;  // exactly one of lstm / gru, registered as "cell"
  std::shared_ptr<GRUCell> gru;
  std::shared_ptr<Attention> attention;  // luong / bahdanau
  std::shared_ptr<Linear> combine;       // Luong W_c: [c; h] (ND*H + H) -> H, no bias

 private:
  // The composite step: emb [B,E] -> out's input [B,H'], weights [B,S] (attending).
  Var features(const Var& emb, DecoderState& st, const EncoderMemory& mem, Var* weights);
  // The fused decoders' input: tokens [B,T] -> xg [T,B,4H], the embeddings''
  // share of the cell's gates (input_gates, autograd/ops.h): a lookup in the
  // decode pack's table when decoding, in a projected table when the
  // vocabulary is smaller than B*T rows and nothing drops out, else per row.
  Var input_gates(const IntTensor& tokens, const EncoderMemory& mem);

  Generator* gen_;  // dropout masks (teacher forcing only)
};

class Seq2Seq : public SeqToSeqModel {
 public:
  Seq2Seq(const Seq2SeqOptions& opt, Generator& gen);

  // src_ids: [B,S], src_len: [B] in [1,S], tgt_in: [B,T] (bos + target[:-1])
  Seq2SeqOutput forward_teacher(const IntTensor& src_ids, const IntTensor& src_len,
                                const IntTensor& tgt_in) override;
  // Teacher-forced cross entropy against tgt_out [B,T] (pad ignored).
  Var loss(const IntTensor& src_ids, const IntTensor& src_len, const IntTensor& tgt_in,
           const IntTensor& tgt_out) override;

  // N sources, K rows each (nn/decoding.h): encodes each source once, then copies its
  // encoder memory to its K rows.
  std::unique_ptr<DecodeState> start_decoding(const IntTensor& src_ids, const IntTensor& src_len,
                                              int64_t K) override;
  int32_t pad_id() const override { return options.pad; }
  int32_t bos_id() const override { return options.bos; }
  int32_t eos_id() const override { return options.eos; }
  // The model's score of `tokens` (generated tokens, as Decoded::tokens) for
  // src_ids [1,S]: log-prob sum / len^alpha, the score beam search maximises.
  float sequence_score(const IntTensor& src_ids, const std::vector<int32_t>& tokens,
                       float alpha = 0.f);
  // Packs the weights every decoding step reads into mem.pack (the fused
  // Luong decoder's and the output layer's), once per decode instead of once
  // per step. Valid while the weights do not change: drop the memory before
  // the next optimizer step. No-op where the fused decoder does not apply.
  void pack_for_decoding(EncoderMemory& mem) const;
  using SeqToSeqModel::loss;  // loss(const Batch&)
  // 6 x (encoder weights x source tokens + decoder weights x target tokens +
  // bridges x examples) + 3 x attention (scores and contexts, 2 x 2 S H' per target token).
  double flops_per_step(const Batch& b, std::string* how) const override;

  std::string describe() const override;
  // Named forward (nn/forward_io.h): src, src_len, tgt (ids) -> logits, attention.
  NamedOutputs forward_named(NamedInputs& in) override;

  Seq2SeqOptions options;
  std::shared_ptr<Seq2SeqEncoder> encoder;
  std::shared_ptr<Linear> bridge_h;  // ND*H -> H, then tanh
  std::shared_ptr<Linear> bridge_c;  // ND*H -> H (LSTM only)
  std::shared_ptr<Seq2SeqDecoder> decoder;
  std::shared_ptr<Linear> out;  // H (Bahdanau: H + ND*H) -> V

 private:
  // Encodes and returns the memory and the decoder's initial state.
  EncoderMemory encode(const IntTensor& src_ids, const IntTensor& src_len, DecoderState& st);

  Generator* gen_;  // dropout masks
};

}  // namespace qkv
