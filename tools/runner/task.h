// The model <-> task binding: how a data set's batches become a training loss
// and evaluation metrics for the model the config built.
//   seq2seq              -> SeqToSeqModel: loss; token_accuracy, exact_match
//   text_classification  -> AttnClassifier: loss; accuracy
//   image_classification -> any UnaryModule [B,C,H,W] -> [B,classes]: loss; accuracy
//   language_model       -> TransformerLM: loss; token_accuracy, perplexity
// Greedy exact_match is computed teacher-forced, in one batched pass: greedy
// decoding reproduces the target exactly iff every teacher-forced argmax
// (eos included) equals the target token, since each step then sees the same
// input. Beam search (beam > 1) decodes each example, so it is far slower.
// Not here: LSTM language models.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "nn/module.h"
#include "tools/data/dataset.h"
#include "tools/runner/metrics.h"

namespace qkv::runner {

// Sums over the examples of an evaluation; Task::metrics turns them into rates.
struct EvalSums {
  double loss_sum = 0;     // sum of per-token (per-example) losses
  int64_t loss_units = 0;  // tokens (examples) in loss_sum
  int64_t tokens = 0, tokens_correct = 0;
  int64_t examples = 0, examples_correct = 0;
};

class Task {
 public:
  virtual ~Task() = default;
  // The mean training loss of a batch (recorded on the tape).
  virtual Var loss(const data::Batch& b) = 0;
  // Adds a batch's evaluation to s. Called under NoGrad, model in eval mode.
  virtual void eval_batch(const data::Batch& b, EvalSums& s) = 0;
  virtual Metrics metrics(const EvalSums& s) const = 0;
  // The metrics this task reports, "loss" first.
  virtual std::vector<std::string> metric_names() const = 0;
};

// Binds the data set's task to the model; Error (naming the model type) when
// the model cannot do it. beam: eval decoding width (seq2seq).
std::unique_ptr<Task> make_task(const data::Dataset& d, std::shared_ptr<Module> model,
                                int64_t beam);

// Evaluates split s over its first `limit` examples (0: all), batch_size at a time.
Metrics evaluate(Task& task, Module& model, const data::Dataset& d, data::Split s, int64_t limit,
                 int64_t batch_size);

}  // namespace qkv::runner
