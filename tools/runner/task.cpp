// The task binding and the evaluation loop.
#include "tools/runner/task.h"

#include <algorithm>
#include <numeric>

namespace qkv::runner {

std::unique_ptr<Task> make_task(const data::Dataset& d, std::shared_ptr<Model> model,
                                int64_t beam) {
  model->check_task(d.task(), d.name());
  EvalOptions o;
  o.beam = beam;
  o.max_len = std::max<int64_t>(1, d.max_target_len());
  return std::make_unique<Task>(std::move(model), o, &d);
}

void Task::eval_examples(const data::Dataset& d, data::Split sp, const std::vector<int64_t>& idx,
                         EvalSums& s) {
  const data::Batch b = d.batch(sp, idx);
  if (!d.scores_predictions()) return eval_batch(b, s);
  EvalOptions o = eval_;
  o.decode = true;
  o.predictions = &predictions_;
  predictions_.clear();
  m_->eval_batch(b, s, o);
  d.score(sp, idx, predictions_, s);
}

Metrics Task::metrics(const EvalSums& s) const {
  Metrics m = m_->metrics(s);
  if (data_) {
    for (auto& kv : data_->metrics(s)) m.push_back(std::move(kv));
  }
  return m;
}

std::vector<std::string> Task::metric_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : metrics(EvalSums{})) names.push_back(name);
  return names;
}

EvalSums evaluate_sums(Task& task, Module& model, const data::Dataset& d, data::Split s,
                       int64_t limit, int64_t batch_size) {
  const int64_t n = limit > 0 ? std::min(limit, d.size(s)) : d.size(s);
  const bool was_training = model.training();
  model.eval();
  NoGrad no_grad;
  EvalSums sums;
  std::vector<int64_t> idx;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    idx.resize(size_t(end - start));
    std::iota(idx.begin(), idx.end(), start);
    task.eval_examples(d, s, idx, sums);
  }
  model.train(was_training);
  return sums;
}

Metrics evaluate(Task& task, Module& model, const data::Dataset& d, data::Split s, int64_t limit,
                 int64_t batch_size) {
  return task.metrics(evaluate_sums(task, model, d, s, limit, batch_size));
}

}  // namespace qkv::runner
