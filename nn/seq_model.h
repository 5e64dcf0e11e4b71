// SeqToSeqModel: what every source -> target sequence model offers (the RNN
// Seq2Seq of nn/seq2seq.h, the Transformer of nn/transformer.h), and the Model
// interface written once for all of them (seq_model.cpp): loss, evaluation
// (token_accuracy; exact_match teacher-forced, or by beam search), prediction.
// Greedy exact_match is computed teacher-forced, in one batched pass: greedy
// decoding reproduces the target exactly iff every teacher-forced argmax (eos
// included) equals the target token, since each step then sees the same input.
// Beam search (beam > 1) and predictions decode the whole batch at once
// (nn/decoding.h): each source encoded once, sources leaving as they finish.
//
// Legend: B batch, S source time, T target time, V target vocabulary, NH heads.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "autograd/var.h"
#include "nn/model.h"

namespace qkv {

class DecodeState;

struct Seq2SeqOutput {
  Var logits;        // [B,T,V]
  Tensor attention;  // [B,T,S] in original source order (undefined without attention)
};

struct Decoded {
  std::vector<int32_t> tokens;  // generated tokens, ending with eos unless max_len was hit
  Tensor attention;             // [T_out,S] in original source order (zeros without attention)
  Tensor head_attention;        // [NH,T_out,S] per head (multi-head models only, else undefined)
  float score = 0.f;            // log-prob sum / len^alpha (greedy: alpha = 0)
};

class SeqToSeqModel : public Model {
 public:
  // ---- Model, for every sequence-to-sequence family ----
  std::vector<TaskKind> tasks() const override { return {TaskKind::seq2seq}; }
  Var loss(const Batch& b) override { return loss(b.src, b.src_len, b.tgt_in, b.tgt_out); }
  int64_t loss_units(const Batch& b) const override { return count_tokens(b.tgt_out, pad_id()); }
  void eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) override;
  Metrics metrics(const EvalSums& s) const override;
  // Greedy or beam decoding of one source, up to max(max_target_len, 2 S + 8) tokens.
  Predicted predict(const Batch& one, const PredictParams& p) override;
  // The same for many sources, decoded together (equal to one at a time).
  std::vector<Predicted> predict_batch(const std::vector<Batch>& ones,
                                       const PredictParams& p) override;

  // ---- the sequence-to-sequence model ----
  // src_ids: [B,S], src_len: [B] in [1,S], tgt_in: [B,T] (bos + target[:-1])
  virtual Seq2SeqOutput forward_teacher(const IntTensor& src_ids, const IntTensor& src_len,
                                        const IntTensor& tgt_in) = 0;
  // Teacher-forced mean cross entropy against tgt_out [B,T] (pad ignored).
  virtual Var loss(const IntTensor& src_ids, const IntTensor& src_len, const IntTensor& tgt_in,
                   const IntTensor& tgt_out) = 0;

  // ---- decoding (nn/decoding.h), the same for every family ----
  // src_ids: [N,S] pad-filled, src_len: [N] in [1,S], max_len: N limits (generated tokens,
  // eos included) -> N results, each as if decoded alone. Beam search: Seq2Seq::beam's
  // rules. Under NoGrad.
  std::vector<Decoded> greedy_batch(const IntTensor& src_ids, const IntTensor& src_len,
                                    const std::vector<int64_t>& max_len);
  std::vector<Decoded> beam_batch(const IntTensor& src_ids, const IntTensor& src_len,
                                  const std::vector<int64_t>& max_len, int64_t beam_size,
                                  float alpha = 0.f);
  // One source: src_ids [1,S] (the whole row is the source).
  Decoded greedy(const IntTensor& src_ids, int64_t max_len);
  Decoded beam(const IntTensor& src_ids, int64_t beam_size, int64_t max_len, float alpha = 0.f);
  // A decoding state of N sources (src_ids [N,S], src_len [N]) with K rows each (row n*K + k
  // belongs to source n), each source encoded once. Under NoGrad.
  virtual std::unique_ptr<DecodeState> start_decoding(const IntTensor& src_ids,
                                                      const IntTensor& src_len, int64_t K) = 0;
  // The longest output the model can decode (positions it knows).
  virtual int64_t max_decode_len() const { return std::numeric_limits<int64_t>::max(); }
  // Special token ids of the target vocabulary.
  virtual int32_t pad_id() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
};

}  // namespace qkv
