// The Model interface for every sequence-to-sequence model (see seq_model.h).
#include "nn/seq_model.h"

#include <algorithm>

#include "autograd/ops.h"

namespace qkv {
namespace {

// The non-pad tokens of row i of targets [B,T].
std::vector<int32_t> row_tokens(const IntTensor& targets, int64_t i, int32_t pad) {
  const int64_t T = targets.size(1);
  std::vector<int32_t> out;
  for (int64_t t = 0; t < T; ++t) {
    const int32_t y = targets.data()[i * T + t];
    if (y != pad) out.push_back(y);
  }
  return out;
}

// Row i of the argmax pred [B*T], up to and including the first eos.
std::vector<int32_t> row_prediction(const std::vector<int32_t>& pred, int64_t i, int64_t T,
                                    int32_t eos) {
  std::vector<int32_t> out;
  for (int64_t t = 0; t < T; ++t) {
    out.push_back(pred[size_t(i * T + t)]);
    if (out.back() == eos) break;
  }
  return out;
}

}  // namespace

void SeqToSeqModel::eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) {
  // logits: [B,T,V]; tgt_out: [B,T]
  const Var logits = forward_teacher(b.src, b.src_len, b.tgt_in).logits;
  const int64_t B = logits.size(0), T = logits.size(1);
  std::vector<bool> correct;
  const std::vector<int32_t> pred = token_eval(logits, b.tgt_out, pad_id(), s, &correct);
  int64_t examples_correct = 0;
  for (int64_t i = 0; i < B; ++i) {
    if (o.beam > 1 || o.decode) {
      // Decodes example i and compares with its target (eos included).
      const int64_t len = b.src_len.data()[i];
      IntTensor src = slice(b.src.narrow_rows(i, i + 1), 1, 0, len);  // [1,len]
      const Decoded d = o.beam > 1 ? beam(src, o.beam, o.max_len) : greedy(src, o.max_len);
      correct[size_t(i)] = d.tokens == row_tokens(b.tgt_out, i, pad_id());
      if (o.predictions) o.predictions->push_back(d.tokens);
    } else if (o.predictions) {
      o.predictions->push_back(row_prediction(pred, i, T, eos_id()));
    }
    examples_correct += correct[size_t(i)];
  }
  s["examples"] += double(B);
  s["examples_correct"] += double(examples_correct);
}

Metrics SeqToSeqModel::metrics(const EvalSums& s) const {
  return {{"loss", eval_rate(s, "loss_sum", "tokens")},
          {"token_accuracy", eval_rate(s, "tokens_correct", "tokens")},
          {"exact_match", eval_rate(s, "examples_correct", "examples")}};
}

Predicted SeqToSeqModel::predict(const Batch& one, const PredictParams& p) {
  check_no_generation(p);
  NoGrad no_grad;
  const int64_t S = one.src.size(1);
  const int64_t max_len = std::max<int64_t>(p.max_target_len, 2 * S + 8);
  const Decoded d = p.beam > 1 ? beam(one.src, p.beam, max_len) : greedy(one.src, max_len);
  return {d.tokens, d.head_attention.defined() ? d.head_attention : d.attention};
}

}  // namespace qkv
