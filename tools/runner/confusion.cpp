// The confusion matrix from a classifier's own predictions.
#include "tools/runner/confusion.h"

#include <algorithm>
#include <numeric>

#include "autograd/var.h"

namespace qkv::runner {

int64_t Confusion::total() const {
  return std::accumulate(counts.begin(), counts.end(), int64_t(0));
}

int64_t Confusion::correct() const {
  const size_t K = classes.size();
  int64_t n = 0;
  for (size_t k = 0; k < K; ++k) n += counts[k * K + k];
  return n;
}

Confusion confusion_matrix(Model& model, const data::Dataset& d, data::Split s,
                           int64_t batch_size) {
  const auto K = int64_t(d.class_names().size());
  check(K > 0, "eval --confusion: the ", d.name(),
        " data set has no classes (a confusion matrix needs a classification task)");
  check(batch_size >= 1, "eval --confusion: batch size must be >= 1, got ", batch_size);
  Confusion c{d.class_names(), std::vector<int64_t>(size_t(K * K), 0)};
  const bool was_training = model.training();
  model.eval();
  NoGrad no_grad;
  std::vector<std::vector<int32_t>> pred;
  EvalOptions o;
  o.predictions = &pred;
  EvalSums sums;  // the model's own metrics, not needed here
  std::vector<int64_t> idx;
  const int64_t n = d.size(s);
  for (int64_t start = 0; start < n; start += batch_size) {
    idx.resize(size_t(std::min(n, start + batch_size) - start));
    std::iota(idx.begin(), idx.end(), start);
    const data::Batch b = d.batch(s, idx);
    pred.clear();
    model.eval_batch(b, sums, o);
    check(b.labels.defined() && int64_t(pred.size()) == b.size, "eval --confusion: ", d.name(),
          ": expected one class prediction per example");
    for (int64_t i = 0; i < b.size; ++i) {
      const int32_t t = b.labels.data()[i];
      check(pred[size_t(i)].size() == 1 && t >= 0 && t < K && pred[size_t(i)][0] >= 0 &&
                pred[size_t(i)][0] < K,
            "eval --confusion: example ", start + i, ": label or prediction outside the ", K,
            " classes");
      ++c.counts[size_t(t * K + pred[size_t(i)][0])];
    }
  }
  model.train(was_training);
  return c;
}

Json confusion_json(const Confusion& c) {
  const size_t K = c.classes.size();
  Json rows = Json::array();
  for (size_t t = 0; t < K; ++t)
    rows.push_back(
        std::vector<int64_t>(c.counts.begin() + long(t * K), c.counts.begin() + long((t + 1) * K)));
  return {{"classes", c.classes}, {"counts", rows}};
}

}  // namespace qkv::runner
