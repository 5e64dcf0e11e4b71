// Building an experiment: data set, model, task.
#include "tools/runner/experiment.h"

#include <omp.h>

#include <cstdlib>
#include <new>
#include <thread>

#include "dist/comm.h"
#include "engine/memory.h"
#include "engine/threads.h"
#include "nn/builder.h"

namespace qkv::runner {
namespace {

// Threads per rank when neither the config nor the environment says: the
// cores this process may run on, shared with the job's other ranks on this
// machine. A launcher that bound each rank to its own cores already did the
// sharing (the affinity mask is smaller than the machine).
int rank_threads() {
  const int visible = omp_get_num_procs();
  const int machine = int(std::thread::hardware_concurrency());
  if (dist::local_size() <= 1 || visible < machine) return std::max(1, visible);
  return std::max(1, machine / dist::local_size());
}

bool threads_from_env() {
  for (const char* name : {"QKV_THREADS", "OMP_NUM_THREADS"})
    if (const char* v = std::getenv(name); v && *v) return true;
  return false;
}

}  // namespace

Json fill_model_config(const Json& model, const data::Dataset& d) {
  return fill_data_facts(model, d.facts());
}

Experiment make_experiment(ExperimentConfig cfg, std::unique_ptr<data::Dataset> d) {
  Experiment ex;
  if (cfg.threads > 0)
    set_num_threads(int(cfg.threads));
  else if (dist::local_size() > 1 && !threads_from_env())
    set_num_threads(rank_threads());
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
