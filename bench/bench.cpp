// The harness: timing, verification, reporting, and the suite table.
#include "bench/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace qkv::bench {

double median_ms(const std::function<void()>& fn, const Options& opt) {
  using clock = std::chrono::steady_clock;
  fn();  // warm-up: page faults, pack buffers, thread pool start
  std::vector<double> ms;
  const double budget = opt.quick ? 0.02 : opt.min_seconds;
  const int min_reps = opt.quick ? 2 : opt.min_repeats;
  double spent = 0;
  while ((int(ms.size()) < min_reps || spent < budget) && ms.size() < 10000) {
    auto t0 = clock::now();
    fn();
    double t = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    ms.push_back(t);
    spent += t / 1000.0;
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

void verify(const std::string& what, const float* got, const float* want, long n, double tol) {
  double worst = 0;
  long at = -1;
  for (long i = 0; i < n; ++i) {
    double e = std::fabs(double(got[i]) - want[i]) / std::max(1.0, std::fabs(double(want[i])));
    if (!(e <= worst)) { worst = e; at = i; }  // also catches NaN
  }
  check(worst <= tol, "bench ", what, ": result differs from the reference: relative error ",
        worst, " at element ", at, " (tolerance ", tol, ")");
}

void report(const Options& opt, const Result& r) {
  if (opt.json) {
    nlohmann::ordered_json j = {{"suite", r.suite}, {"case", r.name},   {"threads", r.threads},
                                {"ms", r.ms},       {"gflops", r.gflops}, {"gbps", r.gbps}};
    if (r.peak_fraction >= 0) j["peak_fraction"] = r.peak_fraction;
    if (r.words_per_s >= 0) j["words_per_s"] = r.words_per_s;
    if (r.speedup >= 0) j["speedup"] = r.speedup;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%-10s %-26s %2d thr %10.4f ms", r.suite.c_str(), r.name.c_str(), r.threads, r.ms);
    if (r.gflops > 0) std::printf(" %8.1f GFLOP/s", r.gflops);
    if (r.gbps > 0) std::printf(" %8.1f GB/s", r.gbps);
    if (r.peak_fraction >= 0) std::printf("  %5.1f%% of peak", 100 * r.peak_fraction);
    if (r.words_per_s >= 0) std::printf(" %10.1f words/s", r.words_per_s);
    if (r.speedup >= 0) std::printf("  %5.1fx batch 1", r.speedup);
    std::printf("\n");
  }
  std::fflush(stdout);
}

void time_bandwidth(const Options& opt, const std::string& suite, const std::string& name,
                    double bytes, const std::function<void()>& fn, std::vector<Result>& out) {
  Result r;
  r.suite = suite;
  r.name = name;
  r.threads = opt.threads;
  r.ms = median_ms(fn, opt);
  r.gbps = bytes / (r.ms * 1e6);
  report(opt, r);
  out.push_back(r);
}

void time_copy(const Options& opt, const std::string& suite, const std::string& dims,
               const Tensor& src, Tensor& dst, std::vector<Result>& out) {
  check(src.numel() == dst.numel(), "bench copy: sizes differ");
  const int64_t n = src.numel(), chunk = 16384;  // 64 KiB per task
  auto run = [&] {
#pragma omp parallel for schedule(static) num_threads(opt.threads) if (opt.threads > 1)
    for (int64_t i = 0; i < n; i += chunk)
      std::memcpy(dst.data() + i, src.data() + i, size_t(std::min(chunk, n - i)) * sizeof(float));
  };
  run();
  verify("copy " + dims, dst.data(), src.data(), long(n), 0.0);
  time_bandwidth(opt, suite, "copy " + dims, 2.0 * double(n) * sizeof(float), run, out);
}

const std::vector<std::string>& suite_names() {
  static const std::vector<std::string> names = {
      "gemm", "softmax", "layernorm", "lstm", "attention", "transformer", "conv", "cbam", "optim", "decode"};
  return names;
}

std::vector<Result> run_suite(const std::string& name, const Options& opt) {
  if (name == "gemm") return suite_gemm(opt);
  if (name == "softmax") return suite_softmax(opt);
  if (name == "layernorm") return suite_layernorm(opt);
  if (name == "lstm") return suite_lstm(opt);
  if (name == "attention") return suite_attention(opt);
  if (name == "transformer") return suite_transformer(opt);
  if (name == "conv") return suite_conv(opt);
  if (name == "cbam") return suite_cbam(opt);
  if (name == "optim") return suite_optim(opt);
  if (name == "decode") return suite_decode(opt);
  std::string known;
  for (const auto& n : suite_names()) known += (known.empty() ? "" : ", ") + n;
  fail("bench: unknown suite '", name, "' (known: ", known, ")");
}

}  // namespace qkv::bench
