// Layout ops on Vars: reshape (free), permute/transpose, slice, concat, stack,
// index_select (embedding gather). Their backwards move gradients back to
// where the forward took the values from; index_select scatter-adds rows,
// skipping the padding id.
#include <cstring>

#include "autograd/ops.h"
#include "engine/kernels/reduce.h"
#include "engine/threads.h"

namespace qkv {
namespace {

std::vector<int> inverse(const std::vector<int>& p) {
  std::vector<int> inv(p.size());
  for (size_t i = 0; i < p.size(); ++i) inv[p[i]] = int(i);
  return inv;
}

}  // namespace

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  check(lead >= 0, "sum_to_shape: cannot reduce ", g.shape(), " to ", shape);
  Tensor r = g;
  if (lead > 0) {  // all leading axes in one reduction: view them as one
    Shape s = {-1};
    s.insert(s.end(), g.shape().begin() + lead, g.shape().end());
    r = reduce(ReduceOp::sum, g.view(s), 0, false);
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == r.shape()[i]) continue;
    check(shape[i] == 1, "sum_to_shape: cannot reduce ", g.shape(), " to ", shape);
    r = reduce(ReduceOp::sum, r, int64_t(i), true);
  }
  return r;
}

Var reshape(const Var& x, Shape shape) {
  Tensor out = x.value().view(std::move(shape));
  return record("reshape", out, {x}, [in = x.shape()](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.view(in)};
  });
}

Var permute(const Var& x, const std::vector<int>& dims) {
  Tensor out = qkv::permute(x.value(), dims);
  std::vector<int> norm(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) norm[i] = normalize_axis(dims[i], x.dim(), "permute");
  return record("permute", out, {x}, [inv = inverse(norm)](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{qkv::permute(g, inv)};
  });
}

Var transpose(const Var& x, int64_t a, int64_t b) {
  Tensor out = qkv::transpose(x.value(), a, b);
  return record("transpose", out, {x}, [a, b](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{qkv::transpose(g, a, b)};
  });
}

Var slice(const Var& x, int64_t axis, int64_t start, int64_t end) {
  Tensor out = qkv::slice(x.value(), axis, start, end);
  const int ax = normalize_axis(axis, x.dim(), "slice");
  const int64_t len = x.shape()[ax];
  if (start < 0) start += len;
  return record("slice", out, {x},
                [in = x.shape(), ax, start](const Tensor& g, const std::vector<bool>&) {
                  // dx = zeros with g copied into [start, start + n) of axis ax
                  Tensor dx = Tensor::zeros(in);
                  AxisSplit s = split_axis(in, ax);
                  const int64_t run = g.shape()[ax] * s.inner;
                  for (int64_t o = 0; o < s.outer; ++o)
                    std::memcpy(dx.data() + (o * s.mid + start) * s.inner, g.data() + o * run,
                                run * sizeof(float));
                  return std::vector<Tensor>{dx};
                });
}

Var concat(const std::vector<Var>& xs, int64_t axis) {
  std::vector<Tensor> vals;
  vals.reserve(xs.size());
  for (const Var& v : xs) vals.push_back(v.value());
  Tensor out = qkv::concat(vals, axis);
  const int ax = normalize_axis(axis, out.dim(), "concat");
  std::vector<int64_t> sizes;
  for (const Tensor& t : vals) sizes.push_back(t.shape()[ax]);
  return record("concat", out, xs,
                [ax, sizes](const Tensor& g, const std::vector<bool>& needs) {
                  std::vector<Tensor> gs(sizes.size());
                  int64_t off = 0;
                  for (size_t i = 0; i < sizes.size(); ++i) {
                    if (needs[i]) gs[i] = qkv::slice(g, ax, off, off + sizes[i]);
                    off += sizes[i];
                  }
                  return gs;
                });
}

Var stack(const std::vector<Var>& xs, int64_t axis) {
  check(!xs.empty(), "stack: no tensors given");
  const int ax = normalize_axis(axis, xs[0].dim() + 1, "stack");
  std::vector<Var> us;
  us.reserve(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    check(xs[k].shape() == xs[0].shape(), "stack: tensor ", k, " has shape ", xs[k].shape(),
          ", expected ", xs[0].shape());
    Shape s = xs[k].shape();
    s.insert(s.begin() + ax, 1);
    us.push_back(reshape(xs[k], s));
  }
  return concat(us, ax);
}

Var index_select(const Var& x, const IntTensor& ids, int64_t padding_idx) {
  Tensor out = qkv::index_select(x.value(), ids);
  return record("index_select", out, {x},
                [in = x.shape(), ids, padding_idx](const Tensor& g, const std::vector<bool>&) {
                  // dx[id] += g[i] for every position i whose id is not padding.
                  Tensor dx = Tensor::zeros(in);
                  const int64_t row = in.size() > 1 ? dx.numel() / in[0] : 1;
                  const int32_t* id = ids.data();
                  const int64_t n = ids.numel();
                  // Columns are independent: split them over threads, so the
                  // order of the sums (and the result) is the same for any count.
                  const int64_t chunk = 64, n_chunks = (row + chunk - 1) / chunk;
                  parallel_for(n_chunks, n_chunks > 1 ? n * row : 0, [&](int64_t c) {
                    const int64_t j0 = c * chunk, j1 = std::min(row, j0 + chunk);
                    for (int64_t i = 0; i < n; ++i) {
                      if (id[i] == padding_idx) continue;
                      float* d = dx.data() + int64_t(id[i]) * row;
                      const float* s = g.data() + i * row;
                      for (int64_t j = j0; j < j1; ++j) d[j] += s[j];
                    }
                  });
                  return std::vector<Tensor>{dx};
                });
}

}  // namespace qkv
