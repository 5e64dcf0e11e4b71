// Model summaries and the FLOPs estimate (each model counts its own: nn/model.h).
#include "tools/runner/inspect.h"

#include <algorithm>
#include <numeric>

#include "nn/model.h"

namespace qkv::runner {

double flops_per_step(const Experiment& ex, std::string* how) {
  const int64_t N = ex.data->size(data::Split::train);
  if (N == 0) return 0;
  std::vector<int64_t> idx(static_cast<size_t>(std::min(N, ex.cfg.train.batch_size)));
  std::iota(idx.begin(), idx.end(), int64_t(0));
  return ex.model->flops_per_step(ex.data->batch(data::Split::train, idx), how);
}

std::string inspect_text(const Module& m) {
  std::string out = m.summary();
  out += "parameters: " + std::to_string(m.num_parameters()) + "\n";
  return out;
}

std::string inspect_text(const Experiment& ex) {
  std::string out = "experiment: " + ex.cfg.name + "\n";
  out += "data: " + ex.data->name() + " (train " +
         std::to_string(ex.data->size(data::Split::train)) + ", valid " +
         std::to_string(ex.data->size(data::Split::valid)) + ", test " +
         std::to_string(ex.data->size(data::Split::test)) + ")\n";
  out += "model:\n" + inspect_text(*ex.model);
  std::string how;
  const double f = flops_per_step(ex, &how);
  out += "flops per step: " +
         (f > 0 ? human_count(f) + " (batch " + std::to_string(ex.cfg.train.batch_size) + "; " +
                      how + ")"
                : std::string("unknown (") + how + ")") +
         "\n";
  return out;
}

}  // namespace qkv::runner
