// `qkv predict --input TEXT`: any input text is encoded by each data set the
// way its sources are, run through a small untrained model and decoded back to
// text, or refused with a qkv::Error (a character the vocabulary lacks, an
// empty input, ...).
#include "fuzz/fuzz.h"
#include "tools/runner/experiment.h"
#include "tools/runner/predict.h"

using namespace qkv;

namespace {

// One experiment per kind of input: a date, a sum, a language model's prefix,
// a review to classify (data in configs/data/, read from the source tree).
constexpr const char* kConfigs[] = {
    R"({"data": {"name": "dates", "train": 32, "valid": 8, "test": 8},
        "model": {"type": "seq2seq", "embed": 8, "hidden": 8}})",
    R"({"data": {"name": "addition", "train": 32, "valid": 8, "test": 8},
        "model": {"type": "seq2seq", "embed": 8, "hidden": 8, "attention": {"type": "none"}}})",
    R"({"data": {"name": "text-lm", "files": ["SRC/README.md"], "seq_len": 16},
        "model": {"type": "transformer_lm", "d_model": 8, "nhead": 2, "num_layers": 1,
                  "dim_feedforward": 16, "max_len": 64}})",
    R"({"data": {"name": "text-classification", "dir": "SRC/configs/data/polarity"},
        "model": {"type": "attn_classifier", "embed": 8, "hidden": 8}})",
};

std::vector<runner::Experiment>& experiments() {
  static std::vector<runner::Experiment> ex;
  return ex;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  for (std::string c : kConfigs) {
    const auto at = c.find("SRC/");
    if (at != std::string::npos) c.replace(at, 3, QKV_SOURCE_DIR);  // the source tree's files
    experiments().push_back(
        runner::make_experiment(runner::parse_config(Json::parse(c), "predict")));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  const std::string input = fuzz::bytes(buf, size);
  runner::PredictOptions o;
  o.length = 4;
  for (runner::Experiment& ex : experiments()) {
    fuzz::refuse_ok([&] { (void)runner::predict(ex, input, o); });
  }
  return 0;
}
