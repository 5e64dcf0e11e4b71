// `qkv bench gemm`: square sizes and the shapes the models produce
// (LSTM input projection, small-M, thin attention-like), each as GFLOP/s and
// as a fraction of the FMA peak measured in the same process.
#include <cmath>
#include <cstdio>

#include "bench/bench.h"
#include "engine/kernels/gemm.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace qkv::bench {
namespace {

struct Case {
  int64_t M, N, K;
};

// Random-projection check (as BLIS's test_gemm): C v == A (B v) in double for a
// random v costs O(MK + KN), so even 8192x2048x512 verifies in milliseconds.
void verify_projection(const std::string& what, const Tensor& A, const Tensor& B,
                       const Tensor& C, int64_t M, int64_t N, int64_t K) {
  Generator g(7);
  std::vector<float> v(N);
  g.fill_uniform(v.data(), N, -1.f, 1.f);
  std::vector<double> bv(K, 0.0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) bv[k] += double(B.data()[k * N + j]) * v[j];
  std::vector<float> want(M), got(M);
  for (int64_t i = 0; i < M; ++i) {
    double w = 0, c = 0;
    for (int64_t k = 0; k < K; ++k) w += double(A.data()[i * K + k]) * bv[k];
    for (int64_t j = 0; j < N; ++j) c += double(C.data()[i * N + j]) * v[j];
    want[i] = float(w);
    got[i] = float(c);
  }
  // Each C entry carries ~sqrt(K) eps error; the projection sums N of them.
  const double tol = 1e-6 * std::sqrt(double(K)) * std::sqrt(double(N)) * 4;
  verify(what, got.data(), want.data(), long(M), tol);
}

}  // namespace

std::vector<Result> suite_gemm(const Options& opt) {
  std::vector<Case> cases = {{128, 128, 128},   {256, 256, 256},  {512, 512, 512},
                             {1024, 1024, 1024}, {2048, 2048, 2048}, {8192, 2048, 512},
                             {64, 1024, 256},    {4096, 64, 64}};
  if (opt.quick) cases = {{33, 17, 65}, {128, 128, 128}, {64, 1024, 256}};
  std::vector<Result> out;
  const double peak = fma_peak_gflops(opt.threads);
  {
    Result r{"gemm", "fma_peak", opt.threads, 0, peak, 0, 1.0};
    report(opt, r);
    out.push_back(r);
  }
  Generator g(1234);
  for (const Case& c : cases) {
    Tensor A = uniform({c.M, c.K}, -1.f, 1.f, g), B = uniform({c.K, c.N}, -1.f, 1.f, g);
    Tensor C = zeros({c.M, c.N});
    auto run = [&] {
      gemm(false, false, c.M, c.N, c.K, 1.f, A.data(), c.K, B.data(), c.N, 0.f, C.data(), c.N);
    };
    const std::string name = std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
                             std::to_string(c.K);
    run();
    verify_projection("gemm " + name, A, B, C, c.M, c.N, c.K);
    Result r;
    r.suite = "gemm";
    r.name = name;
    r.threads = opt.threads;
    r.ms = median_ms(run, opt);
    r.gflops = 2.0 * c.M * c.N * c.K / (r.ms * 1e6);
    r.peak_fraction = r.gflops / fma_peak_gflops(opt.threads, /*fresh=*/true);
    report(opt, r);
    out.push_back(r);
  }
  return out;
}

}  // namespace qkv::bench
