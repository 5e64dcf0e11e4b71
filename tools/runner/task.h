// The binding of a data set's task to the experiment's model: the model says
// which task kinds it does (nn/model.h), and Task carries the evaluation
// options the data set and the config decide (beam width, decoding limit).
// Everything else (loss, metrics, decoding) is the model's; Task only forwards,
// so the trainer and the commands stay as they were. Also the evaluation loop.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "nn/model.h"
#include "tools/data/dataset.h"
#include "tools/runner/metrics.h"

namespace qkv::runner {

using qkv::EvalSums;

class Task {
 public:
  // data (if not null): the data set whose scoring hook adds metrics of its own.
  Task(std::shared_ptr<Model> model, EvalOptions eval, const data::Dataset* data = nullptr)
      : m_(std::move(model)), eval_(eval), data_(data) {}
  // The mean training loss of a batch (recorded on the tape).
  Var loss(const data::Batch& b) { return m_->loss(b); }
  // The units loss() averages over (tokens or examples): weights slices of a batch.
  int64_t loss_units(const data::Batch& b) const { return m_->loss_units(b); }
  // Adds a batch's evaluation to s. Called under NoGrad, model in eval mode.
  void eval_batch(const data::Batch& b, EvalSums& s) { m_->eval_batch(b, s, eval_); }
  // The same for examples idx of split sp of d, and d's own scoring of the
  // decoded predictions when d scores them.
  void eval_examples(const data::Dataset& d, data::Split sp, const std::vector<int64_t>& idx,
                     EvalSums& s);
  // The model's metrics, then the data set's.
  Metrics metrics(const EvalSums& s) const;
  // The metrics this task reports, "loss" first.
  std::vector<std::string> metric_names() const;
  // The model the task evaluates (switched to eval mode around an evaluation).
  Model& model() { return *m_; }

 private:
  std::shared_ptr<Model> m_;
  EvalOptions eval_;
  const data::Dataset* data_;
  std::vector<std::vector<int32_t>> predictions_;  // reused by eval_examples
};

// Binds the data set's task to the model; Error (naming the model and the data
// set's task) when the model cannot do it. beam: eval decoding width (seq2seq).
std::unique_ptr<Task> make_task(const data::Dataset& d, std::shared_ptr<Model> model, int64_t beam);

// Evaluates split s over its first `limit` examples (0: all), or over the
// examples named in `examples` (if not null; limit ignored), batch_size at a
// time: the sums (to be added across processes), and the metrics from them.
EvalSums evaluate_sums(Task& task, const data::Dataset& d, data::Split s, int64_t limit,
                       int64_t batch_size, const std::vector<int64_t>* examples = nullptr);
Metrics evaluate(Task& task, const data::Dataset& d, data::Split s, int64_t limit,
                 int64_t batch_size);

// One bucket of source lengths [min_len, max_len] and the metrics of its examples.
struct LengthBucket {
  int64_t min_len = 0, max_len = 0;
  int64_t examples = 0;
  Metrics metrics;
};
// Split s (every example) by source length: buckets `width` lengths wide (1..width,
// width+1..2 width, ...; empty ones left out), each evaluated alone with every metric.
// Error when the data set has no sources (images).
std::vector<LengthBucket> evaluate_by_length(Task& task, const data::Dataset& d, data::Split s,
                                             int64_t width, int64_t batch_size);
// [{"min_len":..., "max_len":..., "examples":..., "metrics":{...}}, ...]
Json length_buckets_json(const std::vector<LengthBucket>& b);

}  // namespace qkv::runner
