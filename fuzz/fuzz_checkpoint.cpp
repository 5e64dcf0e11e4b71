// Checkpoints: a safetensors file loaded into a small dates model and its Adam
// optimizer (strictly: every tensor named and shaped as the model's), and the
// training state read from its metadata, as `qkv train --resume`, `eval` and
// `predict` do. Seeds: checkpoints `qkv train` wrote for the same config.
#include "fuzz/fuzz.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "tools/runner/experiment.h"
#include "tools/runner/train.h"
#include "tools/runner/train_state.h"

using namespace qkv;

// The config of the seeds (fuzz/corpus/checkpoint/README.md).
constexpr const char* kConfig = R"({
  "data": {"name": "dates", "train": 64, "valid": 16, "test": 16},
  "model": {"type": "seq2seq", "embed": 8, "hidden": 8},
  "train": {"steps": 2, "batch_size": 8}
})";

namespace {
runner::Experiment* g_ex = nullptr;
std::unique_ptr<Optimizer> g_opt;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  static runner::Experiment ex =
      runner::make_experiment(runner::parse_config(Json::parse(kConfig), "checkpoint"));
  g_ex = &ex;
  g_opt = runner::make_optimizer(ex.cfg.train.optimizer, ex.model->parameters());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  fuzz::refuse_ok([&] {
    const TensorFile f = parse_safetensors(fuzz::bytes(buf, size), "input");
    const auto meta = load_checkpoint(f, "input", *g_ex->model, g_opt.get());
    (void)runner::TrainState::from_metadata(meta, "input");
  });
  return 0;
}
