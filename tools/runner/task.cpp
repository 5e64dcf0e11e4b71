// The task binding and the evaluation loop.
#include "tools/runner/task.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "dist/comm.h"

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

EvalSums evaluate_sums(Task& task, const data::Dataset& d, data::Split s, int64_t limit,
                       int64_t batch_size, const std::vector<int64_t>* examples) {
  const int64_t n = examples    ? int64_t(examples->size())
                    : limit > 0 ? std::min(limit, d.size(s))
                                : d.size(s);
  Model& model = task.model();
  const bool was_training = model.training();
  model.eval();
  NoGrad no_grad;
  EvalSums sums;
  std::vector<int64_t> idx;
  // Over several ranks, rank r takes batches r, r + R, ...; the sums are added below.
  for (int64_t start = batch_size * dist::rank(); start < n; start += batch_size * dist::size()) {
    const int64_t end = std::min(n, start + batch_size);
    idx.resize(size_t(end - start));
    if (examples)
      std::copy(examples->begin() + start, examples->begin() + end, idx.begin());
    else
      std::iota(idx.begin(), idx.end(), start);
    task.eval_examples(d, s, idx, sums);
  }
  model.train(was_training);
  dist::allreduce_sum(sums);
  return sums;
}

Metrics evaluate(Task& task, const data::Dataset& d, data::Split s, int64_t limit,
                 int64_t batch_size) {
  return task.metrics(evaluate_sums(task, d, s, limit, batch_size));
}

// ---- quality against source length ------------------------------------------------

std::vector<LengthBucket> evaluate_by_length(Task& task, const data::Dataset& d, data::Split s,
                                             int64_t width, int64_t batch_size) {
  check(width >= 1, "eval: --bucket-width must be >= 1, got ", width);
  // The examples of each bucket, from the source lengths the data set serves.
  std::map<int64_t, std::vector<int64_t>> groups;
  const int64_t n = d.size(s);
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<int64_t> idx(size_t(std::min(n, start + batch_size) - start));
    std::iota(idx.begin(), idx.end(), start);
    const data::Batch b = d.batch(s, idx);
    check(b.src_len.defined(), "eval --by-length: the ", d.name(),
          " data set has no source sequences to measure");
    for (size_t i = 0; i < idx.size(); ++i)
      groups[(b.src_len.data()[i] - 1) / width].push_back(idx[i]);
  }
  std::vector<LengthBucket> out;
  for (const auto& [bucket, examples] : groups) {
    LengthBucket lb{bucket * width + 1, (bucket + 1) * width, int64_t(examples.size()), {}};
    lb.metrics = task.metrics(evaluate_sums(task, d, s, 0, batch_size, &examples));
    out.push_back(std::move(lb));
  }
  return out;
}

Json length_buckets_json(const std::vector<LengthBucket>& b) {
  Json out = Json::array();
  for (const LengthBucket& x : b)
    out.push_back({{"min_len", x.min_len},
                   {"max_len", x.max_len},
                   {"examples", x.examples},
                   {"metrics", metrics_json(x.metrics)}});
  return out;
}

}  // namespace qkv::runner
