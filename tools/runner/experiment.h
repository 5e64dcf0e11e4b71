// An experiment built from its config: the data set, the model (its vocab
// sizes / classes filled in from the data set's facts where the model type's
// registration asks and the config leaves them out), the generator the model
// draws from (dropout) and the task binding.
// Every error here is a config error (exit 2 in the CLI).
#pragma once
#include <memory>
#include <string>

#include "engine/rng.h"
#include "nn/model.h"
#include "tools/data/dataset.h"
#include "tools/runner/config.h"
#include "tools/runner/task.h"

namespace qkv::runner {

struct Experiment {
  ExperimentConfig cfg;  // cfg.resolved: data and model resolved too
  std::unique_ptr<data::Dataset> data;
  std::unique_ptr<Generator> gen;  // the model's: a stable address (modules keep it)
  std::shared_ptr<Model> model;
  std::unique_ptr<Task> task;
};

// Fills what the data set determines into a model config, where absent: the
// data set's facts (vocabulary sizes, classes) under the keys the model type
// registered for them (nn/builder.h: fill_data_facts).
Json fill_model_config(const Json& model, const data::Dataset& d);

// From a parsed config; threads are set here: cfg.threads when > 0, else (over
// several ranks on one machine, with no QKV_THREADS / OMP_NUM_THREADS) the
// machine's cores divided among its ranks.
Experiment make_experiment(ExperimentConfig cfg);
// The same with a data set made by the caller (tests use a fake one).
Experiment make_experiment(ExperimentConfig cfg, std::unique_ptr<data::Dataset> d);

}  // namespace qkv::runner
