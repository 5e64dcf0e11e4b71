// The training loop of `qkv train`: seeded shuffling per epoch, mini-batches,
// optimizer / schedule / clipping, periodic evaluation on the first
// eval_samples valid examples, DIR/metrics.jsonl, DIR/model.safetensors (last)
// and DIR/best.safetensors (atomic, with optimizer state, step and RNG state
// in the metadata), DIR/curves.svg, early stopping and time-to-target.
//
// --resume continues from DIR/model.safetensors bit for bit: the data order of
// epoch e is a pure function of (seed, e), the position is the step count,
// the schedule is closed-form in the step, and the optimizer moments and the
// model's generator come back from the checkpoint.
//
// A non-finite loss stops training with an Error (nothing is saved after it,
// so the last checkpoint stays the last good one). Over several ranks, a
// non-finite loss or gradient on any rank is agreed in the step's exchange and
// every rank raises the same dist::JobError naming that rank. stop_flag() (SIGINT in
// the CLI) makes the loop save a checkpoint and return `interrupted`.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "nn/json_config.h"
#include "nn/optim.h"
#include "tools/runner/experiment.h"
#include "tools/runner/metrics.h"
#include "tools/runner/train_state.h"  // the checkpoint metadata: TrainState, kCheckpointFormat

namespace qkv::runner {

struct RunOptions {
  std::string out_dir;                           // "" = cfg.output
  bool resume = false;                           // continue from out_dir/model.safetensors
  bool tty = false;                              // progress bar instead of log lines
  bool quiet = false;                            // no progress, log or config lines at all (tests)
  std::function<void(int64_t step)> after_step;  // called after each update (tests)
};

struct TrainResult {
  int64_t steps = 0;         // updates done in total (resumed runs included)
  double train_seconds = 0;  // wall time of the loop (evaluations and saves included)
  bool interrupted = false;  // stop_flag() was seen: saved, then returned
  bool target_reached = false;
  int64_t target_step = -1;  // the step at which the target was reached
  Metrics valid, test;       // final evaluation on the whole splits (not when interrupted)
  Json summary;              // the one-line summary `qkv train` prints
};

// Set from a signal handler; the loop checks it before each update.
std::atomic<bool>& stop_flag();

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c, std::vector<Var> params);

TrainResult train(Experiment& ex, const RunOptions& opt);

}  // namespace qkv::runner
