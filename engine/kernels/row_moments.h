// Row reductions shared by the reduction, softmax, LayerNorm and GEMM kernels:
// a pairwise SIMD sum, a dot product, and the centred moments that variance and LayerNorm statistics
// are built from (two passes: the one-pass E[x^2] - E[x]^2 form is wrong by
// orders of magnitude when |mean| >> std).
#pragma once
#include <cstdint>

namespace qkv::rows {

// Sum of p[0..n): 4 vector accumulators within 2048-float blocks, blocks
// combined pairwise, so the error grows like log2(n) rather than n.
float sum(const float* p, int64_t n);

// sum(a[i] * b[i]) over [0, n): 4 FMA chains (latency 4 x 2 pipes would want
// 8, but rows here are short and memory-bound).
float dot(const float* a, const float* b, int64_t n);

struct Moments {
  float mean0;   // sum / n (pass 1)
  float sum_d;   // sum(x - mean0): n times mean0's rounding error (tiny)
  float sum_d2;  // sum((x - mean0)^2)
};
// n >= 1. `next` (may be null) is prefetched during pass 2, which reads p from
// L1 and would otherwise leave DRAM idle (the next row's pass 1 then hits cache).
Moments centred(const float* p, int64_t n, const float* next = nullptr);

// ---- scalar references (the tests' oracles): plain loops accumulated in double
double sum_ref(const float* p, int64_t n);
double dot_ref(const float* a, const float* b, int64_t n);
// mean0 as sum_ref / n; sum_d and sum_d2 about that mean, in double.
struct MomentsRef {
  double mean0, sum_d, sum_d2;
};
MomentsRef centred_ref(const float* p, int64_t n);

}  // namespace qkv::rows
