// Building an experiment: data set, model, task.
#include "tools/runner/experiment.h"

#include <new>

#include "engine/memory.h"
#include "engine/threads.h"
#include "nn/builder.h"

namespace qkv::runner {

Json fill_model_config(const Json& model, const data::Dataset& d) {
  return fill_data_facts(model, d.facts());
}

Experiment make_experiment(ExperimentConfig cfg, std::unique_ptr<data::Dataset> d) {
  Experiment ex;
  if (cfg.threads > 0) set_num_threads(int(cfg.threads));
  ex.data = std::move(d);
  ex.gen = std::make_unique<Generator>(cfg.seed);
  BuiltModel b = build_model(fill_model_config(cfg.model, *ex.data), *ex.gen, "model");
  ex.model = b.model;
  cfg.resolved["model"] = b.resolved;
  ex.task = make_task(*ex.data, ex.model, cfg.train.beam);
  const auto names = ex.task->metric_names();
  auto check_metric = [&](const std::string& m, const char* path) {
    if (m.empty()) return;
    std::string list;
    bool ok = false;
    for (const auto& n : names) {
      ok |= n == m;
      list += (list.empty() ? "" : ", ") + n;
    }
    check(ok, path, ": expected one of ", list, ", got \"", m, "\"");
  };
  check_metric(cfg.train.early_stopping.metric, "train.early_stopping.metric");
  check_metric(cfg.train.target.metric, "train.target.metric");
  ex.cfg = std::move(cfg);
  return ex;
}

Experiment make_experiment(ExperimentConfig cfg) {
  data::Made made;
  {
    AllocScope scope("data");
    try {
      made = data::make_dataset(cfg.data, cfg.seed, "data");
    } catch (const std::bad_alloc&) {
      fail_out_of_memory("data: building the data set");
    }
  }
  cfg.resolved["data"] = made.resolved;
  return make_experiment(std::move(cfg), std::move(made.dataset));
}

}  // namespace qkv::runner
