// Gradient clipping: per-chunk partial norms (SIMD, float lanes over short
// blocks, blocks added in double), combined in a fixed order; then one scaling
// or clamping pass per gradient.
#include "nn/clip.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

constexpr float kInf = std::numeric_limits<float>::infinity();
// Fixed chunks: the partial sums and their order never depend on the thread count.
constexpr int64_t kChunk = 16384;
// Float lanes accumulate at most kBlock / (4W) terms before the block's sum
// moves to double: 4 terms on AVX-512, 16 on SSE2, error ~1 ulp per block.
constexpr int64_t kBlock = 256;

// NaN in either operand wins, as torch's max.
inline float max_nan(float a, float b) { return std::isnan(a) || a > b ? a : b; }
inline VF max_nan(VF a, VF b) { return xsimd::select(xsimd::isnan(a) || a > b, a, b); }

// sum |x|^p over x[0, n) for p = 1 or 2 (SIMD), any other finite p (scalar, double).
double power_sum(const float* x, int64_t n, double p) {
  if (p != 1 && p != 2) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::pow(std::fabs(double(x[i])), p);
    return s;
  }
  const bool sq = p == 2;
  auto term = [sq](VF v) { return sq ? v * v : xsimd::abs(v); };
  double total = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    VF a0(0.f), a1(0.f), a2(0.f), a3(0.f);
    int64_t i = b;
    for (; i + 4 * W <= e; i += 4 * W) {
      a0 += term(VF::load_unaligned(x + i));
      a1 += term(VF::load_unaligned(x + i + W));
      a2 += term(VF::load_unaligned(x + i + 2 * W));
      a3 += term(VF::load_unaligned(x + i + 3 * W));
    }
    for (; i + W <= e; i += W) a0 += term(VF::load_unaligned(x + i));
    if (i < e) a1 += term(simd::load_partial(x + i, int(e - i), 0.f));
    total += double(simd::hsum((a0 + a1) + (a2 + a3)));
  }
  return total;
}

float max_abs(const float* x, int64_t n) {
  VF m(0.f);
  int64_t i = 0;
  for (; i + W <= n; i += W) m = max_nan(xsimd::abs(VF::load_unaligned(x + i)), m);
  float r = 0.f;
  alignas(64) float lanes[W];
  m.store_aligned(lanes);
  for (int k = 0; k < W; ++k) r = max_nan(lanes[k], r);
  for (; i < n; ++i) r = max_nan(std::fabs(x[i]), r);
  return r;
}

struct Chunk {
  size_t grad;
  int64_t begin, end;
};

std::vector<Chunk> chunks_of(const std::vector<Tensor>& grads, int64_t* total) {
  std::vector<Chunk> out;
  *total = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    const int64_t n = grads[i].numel();
    for (int64_t b = 0; b < n; b += kChunk) out.push_back({i, b, std::min(n, b + kChunk)});
    *total += n;
  }
  return out;
}

std::vector<Tensor> grads_of(const std::vector<Var>& params) {
  std::vector<Tensor> g;
  for (const Var& p : params)
    if (p.defined() && p.has_grad()) g.push_back(p.grad());  // handles: same storage
  return g;
}

// torch: norms = [norm(g, p) for g in grads] (each a float), total = norm(stack(norms), p).
float total_norm(const std::vector<Tensor>& grads, float norm_type, const char* who) {
  check(norm_type > 0, who, ": norm_type must be > 0 (or inf), got ", norm_type);
  if (grads.empty()) return 0.f;
  int64_t total = 0;
  const std::vector<Chunk> chunks = chunks_of(grads, &total);
  const int64_t nc = int64_t(chunks.size());
  const bool inf = norm_type == kInf;
  const double p = norm_type;
  std::vector<double> part(chunks.size());
  const int nt = num_threads();
#pragma omp parallel for schedule(static) if (nt > 1 && nc > 1 && worth_threads(total)) num_threads(nt)
  for (int64_t k = 0; k < nc; ++k) {
    const Chunk& c = chunks[k];
    const float* x = grads[c.grad].data() + c.begin;
    part[k] = inf ? double(max_abs(x, c.end - c.begin)) : power_sum(x, c.end - c.begin, p);
  }
  // Per-gradient norms, rounded to float as torch's are, then the norm of those.
  std::vector<double> acc(grads.size(), 0.0);
  for (int64_t k = 0; k < nc; ++k) {
    double& a = acc[chunks[k].grad];
    a = inf ? double(max_nan(float(a), float(part[k]))) : a + part[k];
  }
  if (inf) {
    float m = 0.f;
    for (double a : acc) m = max_nan(m, float(a));
    return m;
  }
  double s = 0;
  for (double a : acc) {
    const double norm_i = double(float(p == 2 ? std::sqrt(a) : std::pow(a, 1 / p)));
    s += p == 2 ? norm_i * norm_i : std::pow(norm_i, p);
  }
  return float(p == 2 ? std::sqrt(s) : std::pow(s, 1 / p));
}

// Runs f(data, n) over every chunk of every gradient, in parallel when it pays.
template <class F>
void for_chunks(const std::vector<Tensor>& grads, const F& f) {
  int64_t total = 0;
  const std::vector<Chunk> chunks = chunks_of(grads, &total);
  const int64_t nc = int64_t(chunks.size());
  const int nt = num_threads();
#pragma omp parallel for schedule(static) if (nt > 1 && nc > 1 && worth_threads(total)) num_threads(nt)
  for (int64_t k = 0; k < nc; ++k) {
    Tensor g = grads[chunks[k].grad];  // a handle: writes reach the Var's gradient
    f(g.data() + chunks[k].begin, chunks[k].end - chunks[k].begin);
  }
}

}  // namespace

float grad_norm(const std::vector<Var>& params, float norm_type) {
  return total_norm(grads_of(params), norm_type, "grad_norm");
}

float clip_grad_norm(std::vector<Var>& params, float max_norm, float norm_type) {
  check(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  const std::vector<Tensor> grads = grads_of(params);
  const float total = total_norm(grads, norm_type, "clip_grad_norm");
  // torch: max_norm / (total_norm + 1e-6) with total_norm a float tensor, which
  // Python evaluates as (total_norm + 1e-6).reciprocal() * max_norm.
  const float coef = (1.f / (total + 1e-6f)) * max_norm;
  if (!(coef < 1.f)) return total;  // within bounds (or NaN): leave the gradients alone
  for_chunks(grads, [coef](float* x, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) (VF::load_unaligned(x + i) * VF(coef)).store_unaligned(x + i);
    for (; i < n; ++i) x[i] *= coef;
  });
  return total;
}

void clip_grad_value(std::vector<Var>& params, float clip) {
  check(clip >= 0, "clip_grad_value: clip must be >= 0, got ", clip);
  for_chunks(grads_of(params), [clip](float* x, int64_t n) {
    const VF hi(clip), lo(-clip);
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const VF v = VF::load_unaligned(x + i);
      xsimd::select(v < lo, lo, xsimd::select(v > hi, hi, v)).store_unaligned(x + i);
    }
    for (; i < n; ++i) x[i] = x[i] < -clip ? -clip : (x[i] > clip ? clip : x[i]);
  });
}

}  // namespace qkv
