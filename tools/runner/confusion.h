// A classifier's confusion matrix on a split (qkv eval --confusion): how often
// each true class is predicted as each class, counted from the predictions the
// model hands an evaluation (EvalOptions::predictions), so any model of a
// classification task gives one, text or images alike.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/json_config.h"
#include "nn/model.h"
#include "tools/data/dataset.h"

namespace qkv::runner {

struct Confusion {
  std::vector<std::string> classes;  // K names, the data set's class ids in order
  std::vector<int64_t> counts;       // [K,K] row-major: counts[true * K + predicted]
  int64_t total() const;             // examples counted
  int64_t correct() const;           // the diagonal
};

// Every example of split s, batch_size at a time. Error when the data set has
// no classes (not a classification task).
Confusion confusion_matrix(Model& model, const data::Dataset& d, data::Split s, int64_t batch_size);
// {"classes": [...], "counts": [[...], ...]} (rows the true classes).
Json confusion_json(const Confusion& c);

}  // namespace qkv::runner
