// Differentiable reductions: sum and mean over a list of axes (empty: all), max
// over one axis. Forwards run the engine's one-axis reduce kernels (through
// sum_to_shape for sum and mean); backward broadcasts g back with one contiguous
// copy (sum, mean) or scatters it to the argmax positions (max).
// Not here: var/std (compose them from mean), min, argmax as an op.
#include <algorithm>

#include "autograd/ops.h"
#include "engine/kernels/reduce.h"

namespace qkv {

namespace {

// The shapes of one multi-axis reduction of x: [...].
struct AxesPlan {
  Shape kept;         // x's shape with every reduced axis set to 1 (keepdim form)
  Shape out;          // the result's shape (kept, or without the reduced axes)
  int64_t count = 1;  // elements per output (product of the reduced sizes)
};

// Axes may be negative; empty means all; a repeated axis is an error. A scalar
// accepts axis 0 or -1 (as the engine and torch do) and reduces nothing.
AxesPlan plan_axes(const Shape& s, const std::vector<int64_t>& axes, bool keepdim, const char* op) {
  const int64_t rank = int64_t(s.size());
  std::vector<bool> reduced(s.size(), axes.empty());
  for (int64_t axis : axes) {
    if (rank == 0) {
      check(axis == 0 || axis == -1, op, ": axis ", axis, " out of range for a scalar (shape [])",
            " (expected 0 or -1)");
      continue;
    }
    const int a = normalize_axis(axis, rank, op);
    check(!reduced[size_t(a)], op, ": axis ", axis, " repeated in ", Shape(axes), " for rank ",
          rank);
    reduced[size_t(a)] = true;
  }
  AxesPlan r;
  for (size_t i = 0; i < s.size(); ++i) {
    r.kept.push_back(reduced[i] ? 1 : s[i]);
    if (reduced[i]) r.count *= s[i];
    if (!reduced[i] || keepdim) r.out.push_back(r.kept.back());
  }
  return r;
}

// x: [...] -> [r.out]: the sum over the reduced axes, never sharing x's storage.
Tensor sum_over(const Tensor& x, const AxesPlan& r) {
  Tensor t = sum_to_shape(x, r.kept);
  if (t.shares_storage(x)) t = t.clone();  // only size-1 axes were reduced
  return t.reshape(r.out);
}

}  // namespace

// x: [...] -> [...] without (or with size 1 at) the reduced axes.
Var sum(const Var& x, const std::vector<int64_t>& axes, bool keepdim) {
  const AxesPlan r = plan_axes(x.shape(), axes, keepdim, "sum");
  Tensor out = sum_over(x.value(), r);
  // out = sum_axes(x):  dx = expand(g as [kept] -> x's shape)
  return record("sum", std::move(out), {x},
                [kept = r.kept, sx = x.shape()](const Tensor& g, const std::vector<bool>&) {
                  return std::vector<Tensor>{expand_to(g.reshape(kept), sx)};
                });
}

Var mean(const Var& x, const std::vector<int64_t>& axes, bool keepdim) {
  const AxesPlan r = plan_axes(x.shape(), axes, keepdim, "mean");
  Tensor out = sum_over(x.value(), r);
  // Dividing by the count (not multiplying by 1/count) matches the engine's mean;
  // an empty reduction gives 0/0 = NaN, as torch.
  const float n = float(r.count);
  binary_inplace(BinaryOp::div, out, Tensor::scalar(n));
  // out = sum_axes(x) / n:  dx = expand(g / n as [kept] -> x's shape); g is the smaller one
  return record(
      "mean", std::move(out), {x},
      [n, kept = r.kept, sx = x.shape()](const Tensor& g, const std::vector<bool>&) {
        return std::vector<Tensor>{expand_to(div(g, Tensor::scalar(n)).reshape(kept), sx)};
      });
}

// x: [outer, n, inner] around axis -> [outer, inner] (with a 1 in between if keepdim).
Var max(const Var& x, int64_t axis, bool keepdim) {
  // Axis and size are checked here so that errors name "max", not "argmax".
  const Shape& s = x.shape();
  int64_t n = 1, inner = 1;
  if (x.dim() == 0) {
    check(axis == 0 || axis == -1, "max: axis ", axis, " out of range for a scalar (shape [])",
          " (expected 0 or -1)");
  } else {
    const size_t a = size_t(normalize_axis(axis, x.dim(), "max"));
    n = s[a];
    for (size_t i = a + 1; i < s.size(); ++i) inner *= s[i];
  }
  check(n > 0, "max: cannot reduce over the empty axis ", axis, " of shape ", s);
  // Without a tape the plain max kernel is enough; with one, argmax is needed
  // anyway and the values are gathered from it (the same values: the first max).
  if (!needs_record({x})) return Var(reduce(ReduceOp::max, x.value(), axis, keepdim));
  IntTensor idx = argmax(x.value(), axis, keepdim);
  const int64_t outer = inner == 0 ? 0 : idx.numel() / inner;
  Tensor out(idx.shape());
  const float* px = x.value().data();
  const int32_t* pi = idx.data();
  float* po = out.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j)
      po[o * inner + j] = px[(o * n + pi[o * inner + j]) * inner + j];
  // out[o, j] = x[o, idx[o, j], j]:  dx = zeros, dx[o, idx[o, j], j] = g[o, j]
  return record("max", std::move(out), {x},
                [idx = std::move(idx), sx = x.shape(), outer, n, inner](const Tensor& g,
                                                                        const std::vector<bool>&) {
                  Tensor dx = Tensor::zeros(sx);
                  float* pd = dx.data();
                  const float* pg = g.data();
                  const int32_t* pi = idx.data();
                  for (int64_t o = 0; o < outer; ++o)
                    for (int64_t j = 0; j < inner; ++j)
                      pd[(o * n + pi[o * inner + j]) * inner + j] = pg[o * inner + j];
                  return std::vector<Tensor>{std::move(dx)};
                });
}

}  // namespace qkv
