// Model: what the experiment runner and the commands (train, eval, predict,
// inspect) need of a whole model, declared once. Each model family implements
// it (SeqToSeqModel for Seq2Seq and Transformer, TransformerLM, AttnClassifier,
// Sequential as an image classifier); the runner never asks which one it holds.
// A new model type is its module plus one registration (nn/builder.h).
//
// Loss and evaluation are kept apart from any averaging across processes:
// loss() is the mean over the batch's loss_units(), and evaluation adds named
// sums (EvalSums) that metrics() turns into rates, so sums from several
// processes (or several slices) can be added before metrics() is taken.
//
// Legend: B batch, S source time, T target time, V vocabulary.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "nn/batch.h"
#include "nn/module.h"

namespace qkv {

class Generator;

// Sums over the examples of an evaluation, by name ("loss_sum", "tokens", ...):
// reducible by adding name by name, whatever the model put there.
using EvalSums = std::map<std::string, double>;
// Named values in a fixed order, "loss" first.
using Metrics = std::vector<std::pair<std::string, double>>;

struct EvalOptions {
  int64_t beam = 1;     // sequence models: > 1 scores exact_match by beam search decoding
  int64_t max_len = 1;  // decoding limit (eos included) when decoding
  // When not null, receives one entry per example in batch order: the model's
  // prediction as ids (a class: one id; a sequence: its tokens up to and
  // including eos, decoded by beam search when beam > 1, else greedily, the
  // whole batch at once), so a data set can score its own metrics from them.
  std::vector<std::vector<int32_t>>* predictions = nullptr;
  // Sequence models: the predictions are decoded, greedy when beam == 1 (for
  // metrics that score wrong outputs too, such as an edit distance).
  bool decode = false;
};

struct PredictParams {
  int64_t beam = 1;            // sequence models: beam width, 1 = greedy
  int64_t max_target_len = 0;  // the data set's longest target (eos included)
  // Language models: tokens to add (0: as many as the context allows, at most
  // 200), and the sampling temperature (0: greedy; > 0 sampled with gen).
  int64_t length = 0;
  float temperature = 0.f;
  Generator* gen = nullptr;
};

struct Predicted {
  std::vector<int32_t> ids;  // decoded tokens (eos if reached), a class id, or an LM's new tokens
  Tensor attention;          // [T_out,S], [NH,T_out,S] per head, or [1,S]; may be undefined
  float score = 0.f;         // sequence models: the decoder's score (log-prob sum / len^alpha)
};

class Model : public virtual Module {
 public:
  // The task kinds this model can be trained on.
  virtual std::vector<TaskKind> tasks() const = 0;
  // Error naming the model and the data set's task unless tasks() has t.
  void check_task(TaskKind t, const std::string& dataset_name) const;

  // The mean training loss over the batch's loss units (recorded on the tape).
  virtual Var loss(const Batch& b) = 0;
  // The units loss() averages over: non-pad target tokens, or examples.
  virtual int64_t loss_units(const Batch& b) const = 0;

  // Adds a batch's evaluation to s. Called under NoGrad, model in eval mode.
  virtual void eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) = 0;
  virtual Metrics metrics(const EvalSums& s) const = 0;
  // The metrics this model reports, "loss" first: the names metrics() gives
  // (taken from metrics of no sums, so the list is written once).
  std::vector<std::string> metric_names() const;

  // One input (a batch of one, as Dataset::encode_input makes it). Under NoGrad.
  virtual Predicted predict(const Batch& one, const PredictParams& p) = 0;
  // Several inputs, each as predict() takes it; results in order, equal to predict() of
  // each. This default predicts one at a time; sequence models decode them together.
  virtual std::vector<Predicted> predict_batch(const std::vector<Batch>& ones,
                                               const PredictParams& p);

  // FLOPs of one training step on b (forward and backward); 0 when there is
  // no estimate. how (if not null) receives how the figure was made.
  virtual double flops_per_step(const Batch& b, std::string* how) const;

 protected:
  // Error unless p has no language-model options (length, temperature).
  void check_no_generation(const PredictParams& p) const;
};

// ---- helpers shared by the families ---------------------------------------------

// "1.23M": a count with three significant digits and a K/M/G/T suffix.
std::string human_count(double x);

// s[name], 0 when absent; s[num] / max(1, s[den]).
double eval_sum(const EvalSums& s, const std::string& name);
double eval_rate(const EvalSums& s, const std::string& num, const std::string& den);

// Parameters of two or more dimensions of m and its children (the weights that
// multiply; biases, norms and the query vector of a pooling do not count).
double matrix_weights(const Module& m);
// Tokens, not pad, of targets (src_len summed for sources).
double sum_lengths(const IntTensor& lengths);

// Row-wise argmax of logits [N,V] -> N ids (first maximum on ties).
std::vector<int32_t> argmax_rows(const Tensor& logits);

// Classification: logits [B,classes] against b.labels.
Var classification_loss(const Var& logits, const Batch& b);
void classification_eval(const Var& logits, const Batch& b, EvalSums& s, const EvalOptions& o);
Metrics classification_metrics(const EvalSums& s);

// Token-level evaluation of logits [B,T,V] against targets [B,T] (pad ignored):
// adds "loss_sum", "tokens", "tokens_correct"; returns the argmax [B*T].
// correct (if not null) receives, per example, whether every non-pad token was
// predicted.
std::vector<int32_t> token_eval(const Var& logits, const IntTensor& targets, int32_t pad,
                                EvalSums& s, std::vector<bool>* correct = nullptr);
// Non-pad tokens of targets.
int64_t count_tokens(const IntTensor& targets, int32_t pad);

}  // namespace qkv
