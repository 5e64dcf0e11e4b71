// The experiment config: one JSON file read once into typed structs with
// defaults (unknown keys and bad values are errors naming the JSON path, e.g.
// "train.optimizer.lr: expected a number > 0, got -0.1"). The "data" and
// "model" objects are passed on raw: make_dataset and build_module read them.
// Not here: building anything (see tools/runner/experiment.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nn/json_config.h"
#include "nn/optim.h"
#include "nn/schedule.h"

namespace qkv::runner {

enum class OptimizerType { sgd, adam, adamw };
inline constexpr EnumName<OptimizerType> kOptimizerTypeNames[] = {
    {OptimizerType::sgd, "sgd"}, {OptimizerType::adam, "adam"}, {OptimizerType::adamw, "adamw"}};
constexpr std::span<const EnumName<OptimizerType>> enum_names(OptimizerType) {
  return kOptimizerTypeNames;
}

// "optimizer": {"type": "adam", "lr": 0.003, ...}. The defaults are those of
// the nn options structs (torch's); only the member of `type` is read and used.
struct OptimizerConfig {
  OptimizerType type = OptimizerType::adam;
  SgdOptions sgd;      // keys lr, momentum, nesterov, weight_decay
  AdamOptions adam;    // keys lr, beta1, beta2, eps, weight_decay
  AdamWOptions adamw;  // the same keys
  double lr() const;   // the type's lr
};

// "schedule": {"type": "cosine", "warmup": 100, ...}: the lr of each update,
// from the optimizer's lr (see nn/schedule.h for the formulas). Each type reads
// only its own keys; the README's Experiments section lists them.
struct ScheduleConfig {
  ScheduleKind type = ScheduleKind::constant;
  int64_t warmup = 0;        // linear warmup steps in front (0: none); noam: its own warmup
  double warmup_start = 0;   // warmup's start factor, in [0, 1] (warmup from lr 0)
  int64_t step_size = 0;     // step: required (as torch StepLR)
  double gamma = 0.1;        // step: torch StepLR's; exponential: required (torch ExponentialLR
                             //   has no default)
  int64_t t_max = 0;         // cosine (0: the steps after warmup)
  double eta_min = 0;        // cosine, torch CosineAnnealingLR's
  int64_t timescale = 1000;  // inverse_sqrt: lr halves at t = 3 * timescale
  int64_t d_model = 0;       // noam: required
  double factor = 1;         // noam
};

// A metric of the valid split: "exact_match", "loss", ... ("" = off).
struct EarlyStopping {
  std::string metric;    // "" = off
  int64_t patience = 5;  // evaluations without improvement before stopping (resolved 0 when off)
};
struct Target {
  std::string metric;  // "" = none; stop when valid metric reaches value
  double value = 0;
};

struct TrainConfig {
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  double clip_norm = 0;  // max global grad norm (0: off)
  int64_t batch_size = 64;
  int64_t epochs = 10;  // at most one of epochs / steps; with steps, epochs is 0
  int64_t steps = 0;
  int64_t eval_every = 0;       // steps between evaluations (0: once per epoch)
  int64_t eval_samples = 1000;  // valid examples per periodic evaluation (0: all)
  EarlyStopping early_stopping;
  Target target;
  int64_t log_every = 50;  // steps between train log lines
  int64_t beam = 1;        // eval decoding: 1 = greedy (computed teacher-forced)
};

struct ExperimentConfig {
  std::string name;  // default: the config file's stem
  std::string comment, expected;
  uint64_t seed = 0;
  int64_t threads = 0;  // 0: QKV_THREADS / OMP_NUM_THREADS / all cores
  std::string output;   // run directory (default runs/<name>)
  Json data;            // raw, for data::make_dataset
  Json model;           // raw, for build_module
  TrainConfig train;
  Json resolved;  // every default filled in (data/model: as given)
};

// Reads the config (root: the whole file). default_name: used when "name" is
// absent. Throws qkv::Error naming the JSON path.
ExperimentConfig parse_config(const Json& root, const std::string& default_name);

// Reads a JSON file and applies "--set path=value" overrides in order.
// Errors name the file (missing, unreadable, not JSON: with line and column).
Json load_config_file(const std::string& path, const std::vector<std::string>& sets = {});
// The same from the file's bytes; name stands for the file in messages.
Json parse_config_text(std::string_view text, const std::string& name,
                       const std::vector<std::string>& sets = {});

// The schedule of a run of total_steps updates.
Schedule make_schedule(const ScheduleConfig& s, double lr, int64_t total_steps);

}  // namespace qkv::runner
