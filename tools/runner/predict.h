// `qkv eval` and `qkv predict`: a trained checkpoint loaded into the
// experiment's model, evaluated on a whole split or run on user inputs (one,
// or a file of them decoded in batches).
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "tools/runner/experiment.h"

namespace qkv::runner {

// Loads the model's tensors from a checkpoint (strict; optimizer state ignored).
// Errors name the file (missing, truncated, corrupt, not this model's).
void load_model(Experiment& ex, const std::string& checkpoint);

struct Prediction {
  std::string text;                     // the decoded output (or class name)
  Tensor attention;                     // [T_out,S], or [NH,T_out,S] per head; may be undefined
  std::vector<std::string> src_tokens;  // S labels (as the model saw the source)
  std::vector<std::string> out_tokens;  // T_out labels
  float score = 0.f;                    // sequence models: log-prob sum / len^alpha
};

struct PredictOptions {
  int64_t beam = 1;  // sequence models: beam width, 1 = greedy
  int64_t batch = 256;  // inputs decoded together (predict_all)
  // Language models: tokens to add (0: as many as the context allows, at
  // most 200), and the sampling temperature (0: greedy; > 0: sampled from
  // softmax(logits / temperature) with the experiment's seed).
  int64_t length = 0;
  float temperature = 0.f;
};

// input: a source as the data set's users write it (a language model's prefix).
Prediction predict(Experiment& ex, const std::string& input, const PredictOptions& o = {});
// Many inputs, o.batch at a time (grouped by length, so little is padding); results in
// input order, equal to predict() of each (a sampling language model draws from one
// generator for all of them).
std::vector<Prediction> predict_all(Experiment& ex, const std::vector<std::string>& inputs,
                                    const PredictOptions& o = {});
// The lines of a text file, one input each (empty lines skipped); Error naming the file when
// it cannot be read or has no inputs.
std::vector<std::string> read_inputs(const std::string& path);
// "input<TAB>prediction<TAB>score" per line; tab, newline and backslash escaped as \t, \n, \\.
std::string predictions_tsv(const std::vector<std::string>& inputs,
                            const std::vector<Prediction>& p);

}  // namespace qkv::runner
