// Checkpoint loading and prediction of one input or of a file of them.
#include "tools/runner/predict.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "engine/rng.h"
#include "nn/checkpoint.h"

namespace qkv::runner {

void load_model(Experiment& ex, const std::string& checkpoint) {
  check(std::filesystem::exists(checkpoint), checkpoint, ": no such checkpoint file");
  load_checkpoint(checkpoint, *ex.model, nullptr);
  ex.model->eval();
}

namespace {

PredictParams predict_params(const Experiment& ex, const PredictOptions& o, Generator& gen) {
  check(o.temperature >= 0.f, "predict: --temperature must be >= 0, got ", o.temperature);
  PredictParams params;
  params.beam = o.beam;
  params.max_target_len = ex.data->max_target_len();
  params.length = o.length;
  params.temperature = o.temperature;
  params.gen = &gen;
  return params;
}

Prediction to_prediction(const Experiment& ex, const std::string& input, const data::Batch& b,
                         const Predicted& out) {
  Prediction p;
  const data::Vocab* sv = ex.data->src_vocab();
  for (int64_t s = 0; s < (b.src.defined() ? b.src.size(1) : 0) && sv; ++s)
    p.src_tokens.push_back(sv->token(b.src.data()[s]));
  p.text = ex.data->output_text(input, out.ids, &p.out_tokens);
  p.attention = out.attention;
  p.score = out.score;
  return p;
}

std::string escaped(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '\t')
      r += "\\t";
    else if (c == '\n')
      r += "\\n";
    else if (c == '\\')
      r += "\\\\";
    else
      r += c;
  }
  return r;
}

}  // namespace

Prediction predict(Experiment& ex, const std::string& input, const PredictOptions& o) {
  Generator gen(ex.cfg.seed);  // a language model's sampling
  const PredictParams params = predict_params(ex, o, gen);
  ex.model->eval();
  NoGrad no_grad;
  const data::Batch b = ex.data->encode_input(input);
  return to_prediction(ex, input, b, ex.model->predict(b, params));
}

std::vector<Prediction> predict_all(Experiment& ex, const std::vector<std::string>& inputs,
                                    const PredictOptions& o) {
  check(o.batch >= 1, "predict: --batch-size must be >= 1, got ", o.batch);
  Generator gen(ex.cfg.seed);
  const PredictParams params = predict_params(ex, o, gen);
  ex.model->eval();
  NoGrad no_grad;
  std::vector<data::Batch> enc;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      enc.push_back(ex.data->encode_input(inputs[i]));
    } catch (const Error& e) {
      fail("input ", i + 1, ": ", e.what());
    }
  }
  // Longest first, so each batch holds sources of similar length.
  auto width = [&](size_t i) { return enc[i].src.defined() ? enc[i].src.size(1) : 0; };
  std::vector<size_t> order(inputs.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return width(a) > width(b); });
  std::vector<Prediction> out(inputs.size());
  for (size_t start = 0; start < order.size(); start += size_t(o.batch)) {
    const size_t end = std::min(order.size(), start + size_t(o.batch));
    std::vector<data::Batch> ones;
    for (size_t j = start; j < end; ++j) ones.push_back(enc[order[j]]);
    const std::vector<Predicted> got = ex.model->predict_batch(ones, params);
    for (size_t j = start; j < end; ++j)
      out[order[j]] = to_prediction(ex, inputs[order[j]], enc[order[j]], got[j - start]);
  }
  return out;
}

std::vector<std::string> read_inputs(const std::string& path) {
  std::ifstream f(path);
  check(f.good(), path, ": cannot read the input file");
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  check(!f.bad(), path, ": read error");
  check(!lines.empty(), path, ": no inputs (one per line)");
  return lines;
}

std::string predictions_tsv(const std::vector<std::string>& inputs,
                            const std::vector<Prediction>& p) {
  std::string out;
  char score[32];
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::snprintf(score, sizeof score, "%.6g", double(p[i].score));
    out += escaped(inputs[i]) + "\t" + escaped(p[i].text) + "\t" + score + "\n";
  }
  return out;
}

}  // namespace qkv::runner
