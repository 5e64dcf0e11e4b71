// Building an experiment: data set, model, task.
#include "tools/runner/experiment.h"

#include "engine/threads.h"
#include "nn/builder.h"

namespace qkv::runner {

Json fill_model_config(const Json& model, const data::Dataset& d) {
  Json m = model;
  if (!m.is_object() || !m.contains("type") || !m["type"].is_string()) return m;
  const std::string type = m["type"].get<std::string>();
  auto fill = [&](const char* key, int64_t value) {
    if (!m.contains(key) && value > 0) m[key] = value;
  };
  const int64_t src_v = d.src_vocab() ? d.src_vocab()->size() : 0;
  const int64_t tgt_v = d.tgt_vocab() ? d.tgt_vocab()->size() : src_v;
  if (type == "seq2seq" || type == "transformer") {
    fill("src_vocab", src_v);
    fill("tgt_vocab", tgt_v);
  } else if (type == "transformer_lm") {
    fill("vocab", src_v);
  } else if (type == "attn_classifier") {
    fill("vocab", src_v);
    fill("classes", int64_t(d.class_names().size()));
  }
  return m;
}

Experiment make_experiment(ExperimentConfig cfg, std::unique_ptr<data::Dataset> d) {
  Experiment ex;
  if (cfg.threads > 0) set_num_threads(int(cfg.threads));
  ex.data = std::move(d);
  ex.gen = std::make_unique<Generator>(cfg.seed);
  Built b = build_module(fill_model_config(cfg.model, *ex.data), *ex.gen, "model");
  ex.model = b.module;
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
  data::Made made = data::make_dataset(cfg.data, cfg.seed, "data");
  cfg.resolved["data"] = made.resolved;
  return make_experiment(std::move(cfg), std::move(made.dataset));
}

}  // namespace qkv::runner
