// Checkpoint loading and single-input prediction.
#include "tools/runner/predict.h"

#include <algorithm>
#include <filesystem>

#include "engine/rng.h"
#include "nn/checkpoint.h"

namespace qkv::runner {

void load_model(Experiment& ex, const std::string& checkpoint) {
  check(std::filesystem::exists(checkpoint), checkpoint, ": no such checkpoint file");
  load_checkpoint(checkpoint, *ex.model, nullptr);
  ex.model->eval();
}

Prediction predict(Experiment& ex, const std::string& input, const PredictOptions& o) {
  check(o.temperature >= 0.f, "predict: --temperature must be >= 0, got ", o.temperature);
  ex.model->eval();
  NoGrad no_grad;
  const data::Batch b = ex.data->encode_input(input);
  Generator gen(ex.cfg.seed);  // a language model's sampling
  PredictParams params;
  params.beam = o.beam;
  params.max_target_len = ex.data->max_target_len();
  params.length = o.length;
  params.temperature = o.temperature;
  params.gen = &gen;
  const Predicted out = ex.model->predict(b, params);
  Prediction p;
  const data::Vocab* sv = ex.data->src_vocab();
  for (int64_t s = 0; s < (b.src.defined() ? b.src.size(1) : 0) && sv; ++s)
    p.src_tokens.push_back(sv->token(b.src.data()[s]));
  p.text = ex.data->output_text(input, out.ids, &p.out_tokens);
  p.attention = out.attention;
  return p;
}

}  // namespace qkv::runner
