// AttnClassifier (see attn_classifier.h). Shapes: B batch, T tokens, ND
// directions, H hidden size per direction, K = ND*H key size.
#include "nn/attn_classifier.h"

#include <cmath>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/attention.h"
#include "nn/init.h"

namespace qkv {

AttnClassifier::AttnClassifier(const AttnClassifierOptions& opt, Generator& gen) : options(opt) {
  check(opt.vocab >= 1 && opt.embed >= 1 && opt.hidden >= 1 && opt.classes >= 1,
        "AttnClassifier: vocab, embed, hidden and classes must be >= 1, got ", opt.vocab, ", ",
        opt.embed, ", ", opt.hidden, ", ", opt.classes);
  const int64_t K = (opt.bidirectional ? 2 : 1) * opt.hidden;
  embedding = register_module(
      "embedding", std::make_shared<Embedding>(
                       EmbeddingOptions{opt.vocab, opt.embed, opt.padding_idx}, gen));
  RNNOptions r;
  r.input_size    = opt.embed;
  r.hidden_size   = opt.hidden;
  r.batch_first   = true;
  r.bidirectional = opt.bidirectional;
  lstm = register_module("lstm", std::make_shared<LSTM>(r, gen));
  // As a Linear(K -> 1) row: U(-1/sqrt(K), 1/sqrt(K)).
  Tensor q({K});
  const float bound = 1.f / std::sqrt(float(K));
  init::uniform(q, -bound, bound, gen);
  query = register_parameter("query", q);
  head = register_module("head", std::make_shared<Linear>(LinearOptions{K, opt.classes, true}, gen));
}

// ids: [B,T], lengths: [B] -> logits [B,classes], weights [B,T]
ClassifierOutput AttnClassifier::forward(const IntTensor& ids, const IntTensor& lengths) {
  check(ids.dim() == 2, "AttnClassifier: ids must be [B,T], got ", ids.shape());
  const int64_t B = ids.size(0), T = ids.size(1), K = query.size(0);
  Tensor mask = attention_mask(lengths, B, T, "AttnClassifier");       // [B,T]
  Var keys = lstm->forward(embedding->forward(ids), &lengths).output;  // [B,T,K]
  Var scores = matmul(keys, reshape(query, {K, 1}));                   // [B,T,1]
  scores = reshape(scores, {B, T}) * (1.f / std::sqrt(float(K))) + Var(mask);
  Var weights = softmax(scores);                                        // [B,T]
  Var context = reshape(matmul(reshape(weights, {B, 1, T}), keys), {B, K});
  return {head->forward(context), weights};
}

std::string AttnClassifier::describe() const {
  return "AttnClassifier(vocab=" + std::to_string(options.vocab) +
         ", embed=" + std::to_string(options.embed) +
         ", hidden=" + std::to_string(options.hidden) +
         ", classes=" + std::to_string(options.classes) +
         ", bidirectional=" + (options.bidirectional ? "true" : "false") +
         ", padding_idx=" + std::to_string(options.padding_idx) + ")";
}

// ---- named forward (nn/forward_io.h) ----------------------------------------------

NamedOutputs AttnClassifier::forward_named(NamedInputs& in) {
  const IntTensor& ids = in.ids("input");
  const ClassifierOutput o = forward(ids, in.ids("lengths"));
  return {{"logits", o.logits}, {"weights", o.weights}};
}

// ---- Model ----------------------------------------------------------------------------

Var AttnClassifier::loss(const Batch& b) {
  return classification_loss(forward(b.src, b.src_len).logits, b);
}

void AttnClassifier::eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) {
  classification_eval(forward(b.src, b.src_len).logits, b, s, o);
}

Predicted AttnClassifier::predict(const Batch& one, const PredictParams& p) {
  check_no_generation(p);
  NoGrad no_grad;
  const ClassifierOutput out = forward(one.src, one.src_len);  // logits [1,classes], weights [1,T]
  return {{argmax_rows(out.logits.value())[0]}, out.weights.value()};
}

double AttnClassifier::flops_per_step(const Batch& b, std::string* how) const {
  // Embedding lookups cost nothing; the head runs once per example.
  const double rnn = matrix_weights(*lstm), tokens = sum_lengths(b.src_len);
  if (how)
    *how = "6 x (" + human_count(rnn) + " LSTM weights x " + human_count(tokens) + " tokens)";
  return 6 * (rnn * tokens + matrix_weights(*head) * double(b.size));
}

}  // namespace qkv
