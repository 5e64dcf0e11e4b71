// Metric bookkeeping and the metrics.jsonl log.
#include "tools/runner/metrics.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/error.h"

namespace qkv::runner {

double metric_value(const Metrics& m, const std::string& name) {
  for (const auto& [k, v] : m)
    if (k == name) return v;
  return std::numeric_limits<double>::quiet_NaN();
}

bool metric_lower_is_better(const std::string& name) {
  // wer, per: word and phoneme error rates (g2p); ser, ter: sequence and token error rates (pairs)
  return name == "loss" || name == "perplexity" || name == "wer" || name == "per" ||
         name == "ser" || name == "ter";
}

bool metric_better(const std::string& name, double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return metric_lower_is_better(name) ? a < b : a > b;
}

Json metrics_json(const Metrics& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) j[k] = std::isfinite(v) ? Json(v) : Json();
  return j;
}

std::string metrics_text(const Metrics& m) {
  std::ostringstream o;
  o.precision(4);
  for (size_t i = 0; i < m.size(); ++i)
    o << (i ? "  " : "") << m[i].first << " " << std::fixed << m[i].second;
  return o.str();
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::open(const std::string& path, bool resume, int64_t keep_until_step) {
  path_ = path;
  records_.clear();
  if (resume) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object() || !j.contains("step")) continue;  // a torn last line
      // A finished run's final evaluations are redone when it is extended.
      if (j["step"].get<int64_t>() <= keep_until_step && !j.value("final", false))
        records_.push_back(j);
    }
  }
  f_ = std::fopen(path.c_str(), "w");
  check(f_ != nullptr, path, ": cannot write the metrics log");
  for (const auto& r : records_) std::fprintf(f_, "%s\n", r.dump().c_str());
  std::fflush(f_);
}

void MetricsLog::write(const Json& record) {
  records_.push_back(record);
  if (!f_) return;
  std::fprintf(f_, "%s\n", record.dump().c_str());
  std::fflush(f_);
}

}  // namespace qkv::runner
