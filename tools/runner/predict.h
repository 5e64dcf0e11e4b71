// `qkv eval` and `qkv predict`: a trained checkpoint loaded into the
// experiment's model, evaluated on a whole split or run on one user input.
// Not here: batch prediction from files.
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
};

struct PredictOptions {
  int64_t beam = 1;  // sequence models: beam width, 1 = greedy
  // Language models: tokens to add (0: as many as the context allows, at
  // most 200), and the sampling temperature (0: greedy; > 0: sampled from
  // softmax(logits / temperature) with the experiment's seed).
  int64_t length = 0;
  float temperature = 0.f;
};

// input: a source as the data set's users write it (a language model's prefix).
Prediction predict(Experiment& ex, const std::string& input, const PredictOptions& o = {});

}  // namespace qkv::runner
