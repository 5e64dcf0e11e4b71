// Metrics of a run: named values in a fixed order ("loss", "token_accuracy",
// ...), which direction is better, and DIR/metrics.jsonl, one JSON object per
// log or evaluation line, which also feeds the curves and a resumed run.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "nn/json_config.h"
#include "nn/model.h"

namespace qkv::runner {

using Metrics = qkv::Metrics;  // nn/model.h: named values in a fixed order

// The value of `name` in m; NaN when absent.
double metric_value(const Metrics& m, const std::string& name);
// loss and perplexity: lower is better; accuracies: higher.
bool metric_lower_is_better(const std::string& name);
// a better than b for metric `name` (NaN is never better).
bool metric_better(const std::string& name, double a, double b);
// {"loss": 0.12, ...} (NaN/Inf as null: JSON has no such numbers).
Json metrics_json(const Metrics& m);
// "loss 0.1234  exact_match 0.9810"
std::string metrics_text(const Metrics& m);

// DIR/metrics.jsonl, appended one line per record and flushed, so that an
// interrupted run keeps what it logged.
class MetricsLog {
 public:
  MetricsLog() = default;
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Fresh: truncates the file. Resume: keeps the records with step <= keep_until_step
  // (lines written after the checkpoint being resumed, and final evaluations, are dropped).
  void open(const std::string& path, bool resume, int64_t keep_until_step);
  void write(const Json& record);  // must hold "step"
  const std::vector<Json>& records() const { return records_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::vector<Json> records_;
};

}  // namespace qkv::runner
