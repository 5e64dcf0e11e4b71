// Micro-benchmark harness behind `qkv bench`. Every case first checks its
// result against the scalar reference (and fails loudly), then times repeats
// and reports the median in physical units. One suite per file.
//
// JSON schema (one object per line, shared with bench/peers/):
//   {"suite":..., "case":..., "threads":..., "ms":..., "gflops":..., "gbps":...}
// plus optional suite-specific fields (gemm adds "peak_fraction", decode "words_per_s" and,
// for a batch, "speedup" over one source at a time).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace qkv::bench {

struct Options {
  bool json = false;
  int threads = 1;           // set by the caller; suites run at this count
  double min_seconds = 0.3;  // per case, after warm-up
  int min_repeats = 5;
  bool quick = false;        // smaller sizes and fewer repeats (tests use this)
};

struct Result {
  std::string suite, name;
  int threads = 1;
  double ms = 0;      // median wall time of one call
  double gflops = 0;  // 0 when not meaningful
  double gbps = 0;    // 0 when not meaningful
  double peak_fraction = -1;  // gemm only: gflops / measured FMA peak (< 0: absent)
  double words_per_s = -1;    // decode only: source sequences decoded per second (< 0: absent)
  double speedup = -1;        // decode batch N: words_per_s over the batch-1 case's (< 0: absent)
};

// Median wall time in ms of fn() over repeats (after one warm-up call).
double median_ms(const std::function<void()>& fn, const Options& opt);

// Prints one result: a JSON line with --json, else an aligned table row.
void report(const Options& opt, const Result& r);

// Throws qkv::Error naming the case when the max relative error exceeds tol.
void verify(const std::string& what, const float* got, const float* want, long n, double tol);

// Times fn as case `name` of `suite` that moves `bytes` (read + written),
// reports it in GB/s and appends it to `out`.
void time_bandwidth(const Options& opt, const std::string& suite, const std::string& name,
                    double bytes, const std::function<void()>& fn, std::vector<Result>& out);

// The bandwidth yardstick of a memory-bound suite: "copy <dims>", a copy of
// src into dst (same bytes as the kernel moves) on the suite's threads.
void time_copy(const Options& opt, const std::string& suite, const std::string& dims,
               const Tensor& src, Tensor& dst, std::vector<Result>& out);

// Measured FMA peak in GFLOP/s at `threads` threads (register-only FMA loop,
// median of short repeats). Cached per thread count unless `fresh`: GEMM cases
// re-measure it right before they run, so clock drift on a shared machine
// moves both sides of the ratio alike.
double fma_peak_gflops(int threads, bool fresh = false);

// Suites. Each returns its results (also printed through report()).
std::vector<Result> suite_gemm(const Options& opt);
std::vector<Result> suite_softmax(const Options& opt);
std::vector<Result> suite_layernorm(const Options& opt);
std::vector<Result> suite_lstm(const Options& opt);
std::vector<Result> suite_attention(const Options& opt);
std::vector<Result> suite_transformer(const Options& opt);  // bench_transformer.cpp
std::vector<Result> suite_conv(const Options& opt);         // bench_conv.cpp
std::vector<Result> suite_cbam(const Options& opt);         // bench_conv.cpp
std::vector<Result> suite_optim(const Options& opt);        // bench_optim.cpp
std::vector<Result> suite_decode(const Options& opt);       // bench_decode.cpp

// Names of all suites in order, and the runner `qkv bench` calls.
const std::vector<std::string>& suite_names();
std::vector<Result> run_suite(const std::string& name, const Options& opt);

}  // namespace qkv::bench
