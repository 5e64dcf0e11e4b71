// The Transformer (Vaswani et al. 2017) with torch.nn's layout and names:
//   TransformerEncoderLayer  self_attn.*, linear1.*, linear2.*, norm1.*, norm2.*
//   TransformerDecoderLayer  self_attn.*, multihead_attn.*, linear1.*, linear2.*, norm1/2/3.*
//     post-norm: x = norm(x + drop(sublayer(x)));  pre-norm (norm_first): x = x + drop(sublayer(norm(x)))
//     feed-forward: linear2(drop(act(linear1(x)))), act relu or gelu (exact erf form)
//   TransformerEncoder / TransformerDecoder  layers.N.*, optional final norm.*
//   Transformer (seq2seq, a SeqToSeqModel)  src_embedding.*, tgt_embedding.*, positional.*,
//     encoder.*, decoder.* (as nn.Transformer, both with a final norm), out.*
//   TransformerLM (decoder-only, causal)     embedding.*, positional.*, layers.N.*, norm.* (pre-norm
//     only), lm_head.*
// Embeddings are scaled by sqrt(D) (Vaswani 3.4) and start as N(0, 1/D), so the scaled
// embedding is of unit size next to the positional encoding. Decoding (greedy, beam, LM
// generation) runs one token at a time over per-layer key/value caches: O(T) per token.
//
// Legend: B batch, T target/query time, S source time, D d_model, NH heads, V vocabulary, K rows
// being decoded (beam hypotheses).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/decoding.h"
#include "nn/embedding.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"
#include "nn/positional.h"
#include "nn/seq_model.h"

namespace qkv {

class Generator;

// The feed-forward block's activation.
enum class TransformerActivation { relu, gelu };
inline constexpr EnumName<TransformerActivation> kTransformerActivationNames[] = {
    {TransformerActivation::relu, "relu"}, {TransformerActivation::gelu, "gelu"}};
constexpr std::span<const EnumName<TransformerActivation>> enum_names(TransformerActivation) {
  return kTransformerActivationNames;
}

struct TransformerLayerOptions {
  int64_t d_model = 0;
  int64_t nhead = 1;
  int64_t dim_feedforward = 2048;
  float dropout = 0.1f;
  TransformerActivation activation = TransformerActivation::relu;
  float layer_norm_eps = 1e-5f;
  bool batch_first = false;         // [B,T,D] (else [T,B,D], PyTorch's default)
  bool norm_first = false;
};

// Children named "0", "1", ... (torch.nn.ModuleList).
class ModuleList : public Module {
 public:
  void push_back(std::shared_ptr<Module> m);
  std::string describe() const override { return "ModuleList"; }
};

class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(const TransformerLayerOptions& opt, Generator& gen);
  // src: [B,T,D] or [T,B,D]; masks as MultiheadAttention's (key_lengths, attn_mask, causal).
  Var forward(const Var& src, const AttentionMasks& masks = {});
  Var forward_bf(const Var& x, const AttentionMasks& masks);  // always [B,T,D]
  // One causal step: x [K,D], cache of this layer's self-attention -> [K,D]. Under NoGrad.
  Tensor step(const Tensor& x, KVCache& cache);
  std::string describe() const override;
  // Named forward (nn/forward_io.h): src, src_key_padding_mask, is_causal -> output.
  NamedOutputs forward_named(NamedInputs& in) override;

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2;

 private:
  template <class SelfAttn>
  Var body(const Var& x, SelfAttn&& sa, bool use_dropout);
  Var feed_forward(const Var& x, bool use_dropout);
  Generator* gen_;
};

class TransformerDecoderLayer : public Module {
 public:
  TransformerDecoderLayer(const TransformerLayerOptions& opt, Generator& gen);
  // tgt: [B,T,D], memory: [B,S,D] (or time-first) -> [B,T,D]. cross_weights (if not null)
  // receives the cross-attention per head, [B,NH,T,S].
  Var forward(const Var& tgt, const Var& memory, const AttentionMasks& tgt_masks = {},
              const AttentionMasks& memory_masks = {}, Var* cross_weights = nullptr);
  Var forward_bf(const Var& x, const Var& memory, const AttentionMasks& tgt_masks,
                 const AttentionMasks& memory_masks, Var* cross_weights);
  // One step: x [K,D]; self cache appended; mem from multihead_attn->project_memory;
  // cross_weights (if not null) receives [K,NH,S]. Under NoGrad.
  Tensor step(const Tensor& x, KVCache& cache, const KVCache& mem,
              const IntTensor* memory_lengths, Tensor* cross_weights);
  std::string describe() const override;
  // Named forward (nn/forward_io.h): tgt, memory, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal -> output.
  NamedOutputs forward_named(NamedInputs& in) override;

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;

 private:
  template <class SelfAttn, class CrossAttn>
  Var body(const Var& x, SelfAttn&& sa, CrossAttn&& ca, bool use_dropout);
  Var feed_forward(const Var& x, bool use_dropout);
  Generator* gen_;
};

// The JSON options of transformer_encoder beyond its layer's.
struct TransformerEncoderOptions {
  int64_t num_layers = 6;   // PyTorch's nn.Transformer default
  bool final_norm = false;  // "norm": a LayerNorm after the last layer
};

class TransformerEncoder : public Module {
 public:
  // num_layers copies of a layer with `opt` (independently initialised), then a final
  // LayerNorm when final_norm.
  TransformerEncoder(const TransformerLayerOptions& opt, int64_t num_layers, bool final_norm,
                     Generator& gen);
  Var forward(const Var& src, const AttentionMasks& masks = {});  // as the layer
  Var forward_bf(const Var& x, const AttentionMasks& masks);
  std::string describe() const override;
  // Named forward (nn/forward_io.h): src, src_key_padding_mask, is_causal -> output.
  NamedOutputs forward_named(NamedInputs& in) override;

  TransformerLayerOptions options;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layer;  // registered as layers.N
  std::shared_ptr<LayerNorm> norm;                              // or null
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerLayerOptions& opt, int64_t num_layers, bool final_norm,
                     Generator& gen);
  // cross_weights: the last layer's, [B,NH,T,S] (if not null).
  Var forward(const Var& tgt, const Var& memory, const AttentionMasks& tgt_masks = {},
              const AttentionMasks& memory_masks = {}, Var* cross_weights = nullptr);
  Var forward_bf(const Var& x, const Var& memory, const AttentionMasks& tgt_masks,
                 const AttentionMasks& memory_masks, Var* cross_weights);
  std::string describe() const override;

  TransformerLayerOptions options;
  std::vector<std::shared_ptr<TransformerDecoderLayer>> layer;
  std::shared_ptr<LayerNorm> norm;
};

// ---- the seq2seq model --------------------------------------------------------------

struct TransformerOptions {
  int64_t src_vocab = 0, tgt_vocab = 0;
  int64_t d_model = 128, nhead = 4;
  int64_t num_encoder_layers = 2, num_decoder_layers = 2;
  int64_t dim_feedforward = 512;
  float dropout = 0.1f;
  TransformerActivation activation = TransformerActivation::relu;
  bool norm_first = false;
  PositionalKind positional = PositionalKind::sinusoidal;
  int64_t max_len = 512;                  // longest source or target
  int32_t pad = 0, bos = 1, eos = 2;
};

class Transformer : public SeqToSeqModel {
 public:
  Transformer(const TransformerOptions& opt, Generator& gen);

  // src_ids: [B,S], src_len: [B] in [1,S], tgt_in: [B,T] -> logits [B,T,V]; attention [B,T,S]
  // (the last decoder layer's cross-attention, head mean) only when gradients are off.
  Seq2SeqOutput forward_teacher(const IntTensor& src_ids, const IntTensor& src_len,
                                const IntTensor& tgt_in) override;
  Var loss(const IntTensor& src_ids, const IntTensor& src_len, const IntTensor& tgt_in,
           const IntTensor& tgt_out) override;
  int32_t pad_id() const override { return options.pad; }
  int32_t bos_id() const override { return options.bos; }
  int32_t eos_id() const override { return options.eos; }
  int64_t max_decode_len() const override { return options.max_len; }

  // N sources (src_ids [N,S], src_len [N]), K rows each (nn/decoding.h), each source encoded
  // once: with the key/value cache (cached) or recomputing the whole prefix at every step
  // (the cache's oracle).
  std::unique_ptr<DecodeState> start_decoding(const IntTensor& src_ids, const IntTensor& src_len,
                                              int64_t K, bool cached);
  std::unique_ptr<DecodeState> start_decoding(const IntTensor& src_ids, const IntTensor& src_len,
                                              int64_t K) override {
    return start_decoding(src_ids, src_len, K, true);
  }
  using SeqToSeqModel::loss;  // loss(const Batch&)
  // Weights by the tokens they multiply, plus attention over the padded S and T.
  double flops_per_step(const Batch& b, std::string* how) const override;

  std::string describe() const override;
  // Named forward (nn/forward_io.h): src, src_len, tgt (ids) -> logits, attention.
  NamedOutputs forward_named(NamedInputs& in) override;

  TransformerOptions options;
  std::shared_ptr<Embedding> src_embedding, tgt_embedding;
  std::shared_ptr<PositionalEncoding> positional;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;
  std::shared_ptr<Linear> out;  // D -> V

  // ids: [B,T] -> embedding * sqrt(D) + position (from offset), dropout: [B,T,D]
  Var embed(Embedding& e, const IntTensor& ids, int64_t offset = 0);
  Var encode(const IntTensor& src_ids, const IntTensor& src_len);  // -> memory [B,S,D]

 private:
  Generator* gen_;
};

// ---- the decoder-only language model --------------------------------------------------

struct TransformerLMOptions {
  int64_t vocab = 0, d_model = 128, nhead = 4, num_layers = 2, dim_feedforward = 512, max_len = 512;
  float dropout = 0.1f;
  TransformerActivation activation = TransformerActivation::relu;
  bool norm_first = false;
  PositionalKind positional = PositionalKind::sinusoidal;
  int32_t pad = 0;
};

class TransformerLM : public Model {
 public:
  TransformerLM(const TransformerLMOptions& opt, Generator& gen);
  Var forward(const IntTensor& ids);                         // ids: [B,T] -> logits [B,T,V], causal
  Var loss(const IntTensor& ids, const IntTensor& targets);  // mean CE, targets == pad ignored
  // Continues `prefix` by n tokens under NoGrad with a KV cache; temperature <= 0 or
  // gen == nullptr: greedy (argmax, first maximum on ties).
  std::vector<int32_t> generate(const std::vector<int32_t>& prefix, int64_t n,
                                float temperature = 0.f, Generator* gen = nullptr);
  // ---- Model (transformer_model.cpp): language_model; loss, token_accuracy, perplexity ----
  std::vector<TaskKind> tasks() const override { return {TaskKind::language_model}; }
  Var loss(const Batch& b) override { return loss(b.src, b.tgt_out); }
  int64_t loss_units(const Batch& b) const override { return count_tokens(b.tgt_out, options.pad); }
  void eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) override;
  Metrics metrics(const EvalSums& s) const override;
  // Continues one input by p.length tokens (0: as many as max_len allows, at most 200).
  Predicted predict(const Batch& one, const PredictParams& p) override;
  // 6 x weights x tokens + 3 x causal attention over the padded length.
  double flops_per_step(const Batch& b, std::string* how) const override;
  std::string describe() const override;
  // Named forward (nn/forward_io.h): input (ids) -> logits.
  NamedOutputs forward_named(NamedInputs& in) override;

  TransformerLMOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<PositionalEncoding> positional;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layer;  // layers.N
  std::shared_ptr<LayerNorm> norm;                              // pre-norm only, else null
  std::shared_ptr<Linear> lm_head;                              // D -> V

 private:
  Generator* gen_;
};

}  // namespace qkv
