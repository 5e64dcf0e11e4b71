// Inverted dropout: y = x * m with m = 0 (probability p) or 1/(1-p), so the
// expected value is unchanged and evaluation is the identity. The mask is
// drawn from the experiment's generator (reproducible for a seed, whatever
// the thread count) and is all that backward keeps.
#include "autograd/ops.h"
#include "engine/kernels/binary.h"
#include "engine/rng.h"

namespace qkv {

Var dropout(const Var& x, float p, bool training, Generator& gen) {
  check(p >= 0.f && p < 1.f, "dropout: expected 0 <= p < 1, got ", p);
  if (!training || p == 0.f) return x;
  Tensor mask(x.shape());
  gen.fill_uniform(mask.data(), mask.numel(), 0.f, 1.f);
  const float scale = 1.f / (1.f - p);
  for (float& m : mask) m = m < p ? 0.f : scale;
  Tensor out = qkv::mul(x.value(), mask);
  return record("dropout", out, {x}, [mask](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{qkv::mul(g, mask)};
  });
}

}  // namespace qkv
