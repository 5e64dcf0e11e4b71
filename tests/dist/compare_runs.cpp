// compare_runs: holds one training run directory against another (the oracle
// of the data-parallel tests: an N-rank run against the 1-process run).
//   compare_runs DIR_A DIR_B TOL
// Compares the per-step train losses of metrics.jsonl (log_every 1) and every
// tensor of model.safetensors, relative to the size of B's values:
// |a - b| <= TOL * max(|b|, 1e-3) per loss, and per tensor
// max|a - b| <= TOL * max(max|b|, 1e-3). TOL 0 asks for bit-identical runs.
// Prints maxdiff for each; exit 0 when all match, 1 otherwise.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "nn/json_config.h"
#include "nn/safetensors.h"

namespace {

std::vector<double> train_losses(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  std::vector<double> out;
  for (std::string line; std::getline(in, line);) {
    const auto r = qkv::Json::parse(line);
    if (r.value("split", "") == "train") out.push_back(r.at("loss").get<double>());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: compare_runs DIR_A DIR_B TOL\n");
    return 2;
  }
  const std::string a = argv[1], b = argv[2];
  const double tol = std::stod(argv[3]);
  int bad = 0;
  try {
    const auto la = train_losses(a), lb = train_losses(b);
    if (la.size() != lb.size() || la.empty()) {
      std::printf("FAIL: %zu against %zu train losses\n", la.size(), lb.size());
      return 1;
    }
    double worst = 0;
    for (size_t i = 0; i < la.size(); ++i) {
      const double d = std::fabs(la[i] - lb[i]);
      worst = std::max(worst, d / std::max(std::fabs(lb[i]), 1e-3));
      if (!(d <= tol * std::max(std::fabs(lb[i]), 1e-3))) {
        if (bad++ < 5) std::printf("FAIL: loss %zu: %.9g against %.9g\n", i + 1, la[i], lb[i]);
      }
    }
    std::printf("losses: %zu steps, max relative diff %.3g\n", la.size(), worst);
    const auto ta = qkv::load_safetensors(a + "/model.safetensors");
    const auto tb = qkv::load_safetensors(b + "/model.safetensors");
    for (const auto& [name, vb] : tb.floats) {
      if (name.rfind("optim.", 0) == 0 && name.find("step") != std::string::npos) continue;
      auto it = ta.floats.find(name);
      if (it == ta.floats.end() || it->second.numel() != vb.numel()) {
        std::printf("FAIL: %s missing or of another size in %s\n", name.c_str(), a.c_str());
        ++bad;
        continue;
      }
      double maxdiff = 0, maxabs = 0;
      for (int64_t i = 0; i < vb.numel(); ++i) {
        const double x = it->second.data()[i], y = vb.data()[i];
        maxdiff = std::max(maxdiff, std::isnan(x - y) ? INFINITY : std::fabs(x - y));
        maxabs = std::max(maxabs, std::fabs(y));
      }
      const bool ok = maxdiff <= tol * std::max(maxabs, 1e-3);
      if (!ok) ++bad;
      std::printf("%s %s maxdiff %.3g (max |b| %.3g)\n", ok ? "  ok" : "FAIL", name.c_str(),
                  maxdiff, maxabs);
    }
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
  return bad == 0 ? 0 : 1;
}
