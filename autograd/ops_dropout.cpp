// Inverted dropout: y = x * m with m = 0 (probability p) or 1/(1-p), so the
// expected value is unchanged and evaluation is the identity. The mask is
// drawn from the experiment's generator (reproducible for a seed, whatever
// the thread count) and is all that backward keeps. In a data-parallel step
// (engine/collective.h: batch_rows() split) the draws are keyed by the global
// example row, so a slice draws what the single process draws for its rows.
#include "autograd/ops.h"
#include "engine/collective.h"
#include "engine/kernels/binary.h"
#include "engine/rng.h"

namespace qkv {
namespace {

// The mask of x's shape as the whole batch's fill would draw it for this
// process's rows. The batch axis is the first of axes 0, 1 whose size is the
// slice's row count: batch-first tensors (every model family's), or time-major
// ones (a stacked RNN's inside) unless their length equals the row count too;
// then the draws are still per example and the same on every run, but not the
// single process's.
void fill_slice_uniform(Tensor& mask, Generator& gen, const BatchRows& r) {
  const Shape& s = mask.shape();
  int axis = -1;
  for (int a = 0; a < std::min<int>(2, int(s.size())) && axis < 0; ++a)
    if (s[size_t(a)] == r.local) axis = a;
  check(axis >= 0, "dropout: x ", s, " has no batch axis of the slice's ", r.local,
        " rows (axis 0 or 1) in a data-parallel step");
  int64_t outer = 1, inner = 1;
  for (int a = 0; a < axis; ++a) outer *= s[size_t(a)];
  for (size_t a = size_t(axis) + 1; a < s.size(); ++a) inner *= s[a];
  gen.fill_uniform_rows(mask.data(), outer, r.local, inner, r.offset, r.global, 0.f, 1.f);
}

}  // namespace

Var dropout(const Var& x, float p, bool training, Generator& gen) {
  check(p >= 0.f && p < 1.f, "dropout: expected 0 <= p < 1, got ", p);
  if (!training || p == 0.f) return x;
  Tensor mask(x.shape());
  if (const BatchRows& r = batch_rows(); r.split())
    fill_slice_uniform(mask, gen, r);
  else
    gen.fill_uniform(mask.data(), mask.numel(), 0.f, 1.f);
  const float scale = 1.f / (1.f - p);
  for (float& m : mask) m = m < p ? 0.f : scale;
  Tensor out = qkv::mul(x.value(), mask);
  return record("dropout", out, {x}, [mask](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{qkv::mul(g, mask)};
  });
}

}  // namespace qkv
