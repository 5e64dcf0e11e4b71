// The machine's own FMA peak: a register-only loop of independent FMA chains.
// FMA latency is 4 cycles and there are up to 2 FMA pipes, so >= 8 independent
// accumulators are needed to saturate; 12 leaves margin and still fits the
// register file (16 or 32 vector registers). Nothing touches memory.
#include <omp.h>

#include <chrono>
#include <algorithm>
#include <map>
#include <vector>

#include "bench/bench.h"
#include "engine/simd.h"

namespace qkv::bench {
namespace {

using simd::VF;

// 12 chains x iters FMAs on one thread; returns a value so nothing is elided.
__attribute__((noinline)) float fma_chains(long iters, float seed) {
  VF a0(seed), a1(seed + 1), a2(seed + 2), a3(seed + 3), a4(seed + 4), a5(seed + 5);
  VF a6(seed + 6), a7(seed + 7), a8(seed + 8), a9(seed + 9), a10(seed + 10), a11(seed + 11);
  const VF m(0.999999f), c(1e-7f);
  for (long i = 0; i < iters; ++i) {
    a0 = xsimd::fma(a0, m, c); a1 = xsimd::fma(a1, m, c); a2 = xsimd::fma(a2, m, c);
    a3 = xsimd::fma(a3, m, c); a4 = xsimd::fma(a4, m, c); a5 = xsimd::fma(a5, m, c);
    a6 = xsimd::fma(a6, m, c); a7 = xsimd::fma(a7, m, c); a8 = xsimd::fma(a8, m, c);
    a9 = xsimd::fma(a9, m, c); a10 = xsimd::fma(a10, m, c); a11 = xsimd::fma(a11, m, c);
    asm volatile("" ::: "memory");  // keep the loop; the chains stay in registers
  }
  VF s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
  return simd::hsum(s);
}

// Median over repeats of ~4 ms, after ~20 ms of warm-up: the same statistic
// as every bench case, and long enough for the core's clock to settle (with
// sub-millisecond repeats the probe read up to 10% low, below what the GEMM
// then sustained).
double measure(int threads) {
  const long iters = 2'000'000;  // 12*16*2*2e6 = 768 MFLOP per thread at 16 lanes: ~4 ms
  const double flop = 12.0 * simd::W * 2.0 * iters;
  std::vector<double> rates;
  volatile float sink = 0;
  for (int rep = 0; rep < 13; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    float s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
    s += fma_chains(iters, 1.f + float(omp_get_thread_num()));
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + s;
    if (rep >= 4) rates.push_back(flop * threads / sec / 1e9);  // reps 0-3 warm up
  }
  std::nth_element(rates.begin(), rates.begin() + rates.size() / 2, rates.end());
  return rates[rates.size() / 2];
}

}  // namespace

double fma_peak_gflops(int threads, bool fresh) {
  static std::map<int, double> cache;
  auto it = cache.find(threads);
  if (!fresh && it != cache.end()) return it->second;
  return cache[threads] = measure(threads);
}

}  // namespace qkv::bench
