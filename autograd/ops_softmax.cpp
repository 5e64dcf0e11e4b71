// Softmax and log-softmax over the last axis as fused ops: the engine's SIMD
// forward, and a hand-written backward that needs only the output y (x is not
// kept). The composites exp(x - max) / sum(...) and x - max - log(sum(...))
// are their test oracles (tests/autograd/test_softmax.cpp).
#include "autograd/ops.h"
#include "engine/kernels/softmax.h"

namespace qkv {

// x: [..., n] -> y: [..., n]
Var softmax(const Var& x) {
  Tensor y = qkv::softmax(x.value());
  // y = exp(x) / sum(exp(x)):  dx = y * (g - sum(g * y))
  return record("softmax", y, {x}, [y](const Tensor& g, const std::vector<bool>&) {
    Tensor dx(y.shape());
    const int64_t n = y.size(-1);
    softmax_backward(y.data(), g.data(), dx.data(), n ? y.numel() / n : 0, n);
    return std::vector<Tensor>{dx};
  });
}

// x: [..., n] -> y: [..., n]
Var log_softmax(const Var& x) {
  Tensor y = qkv::log_softmax(x.value());
  // y = x - log(sum(exp(x))):  dx = g - exp(y) * sum(g)
  return record("log_softmax", y, {x}, [y](const Tensor& g, const std::vector<bool>&) {
    Tensor dx(y.shape());
    const int64_t n = y.size(-1);
    log_softmax_backward(y.data(), g.data(), dx.data(), n ? y.numel() / n : 0, n);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace qkv
