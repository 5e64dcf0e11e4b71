// Gradient clipping: per-chunk partial norms (the kernels of
// engine/kernels/clip.h), combined in a fixed order; then one scaling or
// clamping pass per gradient.
#include "nn/clip.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/kernels/clip.h"
#include "engine/threads.h"

namespace qkv {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// Fixed chunks: the partial sums and their order never depend on the thread count.
constexpr int64_t kChunk = 16384;

// NaN in either operand wins, as torch's max.
inline float max_nan(float a, float b) { return std::isnan(a) || a > b ? a : b; }

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
  parallel_for(nc, nc > 1 ? total : 0, [&](int64_t k) {
    const Chunk& c = chunks[k];
    const float* x = grads[c.grad].data() + c.begin;
    part[k] = inf ? double(clip_max_abs(x, c.end - c.begin)) : clip_power_sum(x, c.end - c.begin, p);
  });
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
  parallel_for(nc, nc > 1 ? total : 0, [&](int64_t k) {
    Tensor g = grads[chunks[k].grad];  // a handle: writes reach the Var's gradient
    f(g.data() + chunks[k].begin, chunks[k].end - chunks[k].begin);
  });
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
  for_chunks(grads, [coef](float* x, int64_t n) { clip_scale(x, n, coef); });
  return total;
}

void clip_grad_value(std::vector<Var>& params, float clip) {
  check(clip >= 0, "clip_grad_value: clip must be >= 0, got ", clip);
  for_chunks(grads_of(params), [clip](float* x, int64_t n) { clip_clamp(x, n, clip); });
}

}  // namespace qkv
