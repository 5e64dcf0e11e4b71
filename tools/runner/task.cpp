// The task binding and the evaluation loop.
#include "tools/runner/task.h"

#include <algorithm>
#include <numeric>

#include "dist/comm.h"

namespace qkv::runner {

std::unique_ptr<Task> make_task(const data::Dataset& d, std::shared_ptr<Model> model,
                                int64_t beam) {
  model->check_task(d.task(), d.name());
  EvalOptions o;
  o.beam = beam;
  o.max_len = std::max<int64_t>(1, d.max_target_len());
  return std::make_unique<Task>(std::move(model), o);
}

EvalSums evaluate_sums(Task& task, Module& model, const data::Dataset& d, data::Split s,
                       int64_t limit, int64_t batch_size) {
  const int64_t n = limit > 0 ? std::min(limit, d.size(s)) : d.size(s);
  const bool was_training = model.training();
  model.eval();
  NoGrad no_grad;
  EvalSums sums;
  std::vector<int64_t> idx;
  // Over several ranks, rank r takes batches r, r + R, ...; the sums are added below.
  for (int64_t start = batch_size * dist::rank(); start < n; start += batch_size * dist::size()) {
    const int64_t end = std::min(n, start + batch_size);
    idx.resize(size_t(end - start));
    std::iota(idx.begin(), idx.end(), start);
    task.eval_batch(d.batch(s, idx), sums);
  }
  model.train(was_training);
  dist::allreduce_sum(sums);
  return sums;
}

Metrics evaluate(Task& task, Module& model, const data::Dataset& d, data::Split s, int64_t limit,
                 int64_t batch_size) {
  return task.metrics(evaluate_sums(task, model, d, s, limit, batch_size));
}

}  // namespace qkv::runner
