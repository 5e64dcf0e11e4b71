// The training state a checkpoint carries besides its tensors: the loop's
// position and counters, the model's generator and the resolved config, stored
// as "qkv.*" strings in the safetensors file's __metadata__. Written and read
// here only (to_metadata / from_metadata), so the two sides cannot drift; the
// keys and the format string are those of every qkv checkpoint so far.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>

namespace qkv::runner {

inline constexpr const char* kCheckpointFormat = "qkv-checkpoint 1";  // "qkv.format"

struct TrainState {
  int64_t step = 0;            // updates done
  int64_t epoch = 0;           // step / steps per epoch } for readers of the file; a resumed
  int64_t batch_in_epoch = 0;  // step % steps per epoch } run derives both from step
  uint64_t gen_seed = 0;       // the model's generator (dropout masks)
  uint64_t gen_counter = 0;
  // The best evaluation so far (NaN: none yet), of which metric, at which step.
  double best = std::numeric_limits<double>::quiet_NaN();
  std::string best_metric;
  int64_t best_step = -1;
  int64_t bad_evals = 0;     // evaluations since the best one (early stopping)
  double train_seconds = 0;  // training time up to the save
  double loss_sum = 0;       // train losses since the last log line (their mean is logged)
  int64_t loss_n = 0;
  std::string config;  // the resolved experiment config, one line of JSON

  // Doubles are written with 17 significant digits, so they read back exactly.
  std::map<std::string, std::string> to_metadata() const;
  // path names the file in errors: a missing key ("not a qkv training
  // checkpoint"), another format, or a value that does not parse. Keys that
  // are not the training state's (the optimizer's "optim.*") are ignored.
  static TrainState from_metadata(const std::map<std::string, std::string>& meta,
                                  const std::string& path);
};

}  // namespace qkv::runner
