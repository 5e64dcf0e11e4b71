// AttnClassifier: the attention-pooled LSTM text classifier of "Understanding
// Attention for Text Classification" (Sun & Lu, ACL 2020):
//   ids [B,T] -> Embedding [B,T,E] -> LSTM (batch_first, lengths) -> keys [B,T,ND*H]
//   scores = keys . query / sqrt(ND*H), query a learned [ND*H] vector, length-masked
//   weights = softmax(scores) [B,T], context = weights @ keys [B,ND*H]
//   logits = head(context) [B,classes]
// Parameters: embedding.weight, lstm.*, query, head.weight, head.bias.
// Not here: dropout, pretrained embeddings, multiple layers.
#pragma once
#include <memory>
#include <string>

#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "nn/rnn.h"

namespace qkv {

class Generator;

struct AttnClassifierOptions {
  int64_t vocab = 0;          // V
  int64_t embed = 0;          // E
  int64_t hidden = 0;         // H per direction
  int64_t classes = 0;
  bool bidirectional = true;  // ND = 2 directions
  int64_t padding_idx = 0;    // embedding row that stays zero (-1: none)
};

struct ClassifierOutput {
  Var logits;   // [B,classes]
  Var weights;  // [B,T]; exactly 0 at padded tokens
};

class AttnClassifier : public Model {
 public:
  AttnClassifier(const AttnClassifierOptions& opt, Generator& gen);
  // ids: [B,T] token ids; lengths: [B] in [1,T].
  ClassifierOutput forward(const IntTensor& ids, const IntTensor& lengths);
  std::string describe() const override;
  // Named forward (nn/forward_io.h): input (ids), lengths -> logits, weights.
  NamedOutputs forward_named(NamedInputs& in) override;

  // ---- Model: text_classification; loss, accuracy ----
  std::vector<TaskKind> tasks() const override { return {TaskKind::text_classification}; }
  Var loss(const Batch& b) override;
  int64_t loss_units(const Batch& b) const override { return b.size; }
  void eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) override;
  Metrics metrics(const EvalSums& s) const override { return classification_metrics(s); }
  // The class id, with the attention weights [1,T].
  Predicted predict(const Batch& one, const PredictParams& p) override;
  // 6 x (LSTM weights x tokens + head x examples).
  double flops_per_step(const Batch& b, std::string* how) const override;

  AttnClassifierOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<LSTM> lstm;
  Var query;  // [ND*H]
  std::shared_ptr<Linear> head;
};

}  // namespace qkv
