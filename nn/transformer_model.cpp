// The Model interface of the Transformer families: the seq2seq Transformer's
// FLOPs count (the rest is SeqToSeqModel's), and the language model's loss,
// evaluation, prediction and FLOPs.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "nn/transformer.h"

namespace qkv {

// ---- Transformer -----------------------------------------------------------------------

double Transformer::flops_per_step(const Batch& b, std::string* how) const {
  // Weights by the tokens they multiply: the encoder's and the memory's
  // key/value projections (2/3 of each cross-attention in_proj) by source
  // tokens, the rest of the decoder and the output layer by target tokens.
  // Attention: Q K^T and P V, 4 D per (query, key) pair, over the padded
  // lengths S and T. Embedding lookups cost nothing.
  const double src_tokens = sum_lengths(b.src_len);
  const double tgt_tokens = double(count_tokens(b.tgt_out, options.pad));
  const double S = b.src.defined() ? double(b.src.size(1)) : 0;
  const double T = b.tgt_in.defined() ? double(b.tgt_in.size(1)) : 0;
  const double enc = matrix_weights(*encoder);
  double mem = 0;
  for (const auto& l : decoder->layer)
    if (l->multihead_attn->in_proj_weight.defined())
      mem += double(l->multihead_attn->in_proj_weight.numel()) * 2 / 3;
  const double dec = matrix_weights(*decoder) + matrix_weights(*out) - mem;
  const double D = double(options.d_model);
  const double attn = 4 * D *
                      (double(options.num_encoder_layers) * S * src_tokens +
                       double(options.num_decoder_layers) * (T + S) * tgt_tokens);
  if (how)
    *how = "6 x (" + human_count(enc + mem) + " weights x " + human_count(src_tokens) +
           " source tokens + " + human_count(dec) + " weights x " + human_count(tgt_tokens) +
           " target tokens) + 3 x attention";
  return 6 * ((enc + mem) * src_tokens + dec * tgt_tokens) + 3 * attn;
}

// ---- TransformerLM ---------------------------------------------------------------------

void TransformerLM::eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) {
  const Var logits = forward(b.src);  // [B,T,V]; tgt_out: [B,T]
  const std::vector<int32_t> pred = token_eval(logits, b.tgt_out, options.pad, s);
  if (o.predictions) {
    const int64_t B = logits.size(0), T = logits.size(1);
    for (int64_t i = 0; i < B; ++i)
      o.predictions->emplace_back(pred.begin() + i * T, pred.begin() + (i + 1) * T);
  }
}

Metrics TransformerLM::metrics(const EvalSums& s) const {
  const double loss = eval_rate(s, "loss_sum", "tokens");
  return {{"loss", loss},
          {"token_accuracy", eval_rate(s, "tokens_correct", "tokens")},
          {"perplexity", std::exp(loss)}};
}

Predicted TransformerLM::predict(const Batch& one, const PredictParams& p) {
  NoGrad no_grad;
  const int64_t S = one.src.size(1);
  const std::vector<int32_t> prefix(one.src.begin(), one.src.begin() + S);
  const int64_t room = options.max_len + 1 - S;
  const int64_t n =
      p.length > 0 ? p.length : std::max<int64_t>(1, std::min<int64_t>(200, room - 1));
  check(n <= room, "predict: cannot add ", n, " tokens (--length): the input is ", S,
        " tokens and the model's max_len is ", options.max_len, ", room for ",
        std::max<int64_t>(0, room), " more");
  return {generate(prefix, n, p.temperature, p.gen), Tensor()};
}

double TransformerLM::flops_per_step(const Batch& b, std::string* how) const {
  // Every weight multiplies every input token; causal attention over the
  // padded length S (the masked half of the pairs counted too).
  double w = matrix_weights(*lm_head);
  for (const auto& l : layer) w += matrix_weights(*l);
  const double tokens = double(b.src.numel());
  const double S = double(b.src.size(1));
  const double attn = 4 * double(options.d_model) * double(options.num_layers) * S * tokens;
  if (how)
    *how =
        "6 x (" + human_count(w) + " weights x " + human_count(tokens) + " tokens) + 3 x attention";
  return 6 * w * tokens + 3 * attn;
}

}  // namespace qkv
