// The optimizer update kernels against their scalar references over sizes
// with tails: every option combination, and the results must be identical
// bit for bit (both sides are the same IEEE-rounded steps in the same order).
// NaN in the AMSGrad maximum wins, as torch.maximum.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/kernels/optim.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::rand_tensor;

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() &&
         std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

const std::vector<int64_t> kOptSizes = {1, 3, 7, 15, 16, 17, 31, 33, 100, 257, 4099};

TEST_SUITE("engine/optim") {
  TEST_CASE("sgd_update equals sgd_update_ref bit for bit") {
    uint64_t seed = 1;
    for (int64_t n : kOptSizes)
      for (float wd : {0.f, 0.01f})
        for (float mom : {0.f, 0.9f})
          for (bool first : {false, true})
            for (bool nesterov : {false, true}) {
              if (nesterov && mom == 0.f) continue;
              SgdStep c;
              c.weight_decay = wd, c.momentum = mom, c.one_minus_damp = nesterov ? 1.f : 0.7f;
              c.neg_lr = -0.05f, c.first = first, c.nesterov = nesterov;
              Tensor p = rand_tensor({n}, ++seed), g = rand_tensor({n}, ++seed),
                     b = rand_tensor({n}, ++seed);
              Tensor p2 = p.clone(), b2 = b.clone();
              float* buf = mom != 0.f ? b.data() : nullptr;
              float* buf2 = mom != 0.f ? b2.data() : nullptr;
              sgd_update(p.data(), g.data(), buf, n, c);
              sgd_update_ref(p2.data(), g.data(), buf2, n, c);
              INFO("n=", n, " wd=", wd, " mom=", mom, " first=", first, " nesterov=", nesterov);
              CHECK(same_bits(p, p2));
              CHECK(same_bits(b, b2));
            }
  }

  TEST_CASE("adam_update equals adam_update_ref bit for bit (Adam, AdamW, AMSGrad)") {
    uint64_t seed = 100;
    for (int64_t n : kOptSizes)
      for (int kind = 0; kind < 3; ++kind)  // Adam L2, AdamW decoupled, no decay
        for (bool ams : {false, true}) {
          const int t = 3;
          AdamStep c;
          c.beta1 = 0.9f, c.one_minus_beta1 = float(1 - 0.9);
          c.beta2 = 0.999f, c.one_minus_beta2 = float(1 - 0.999);
          c.weight_decay = kind == 0 ? 0.01f : 0.f;
          c.decay = kind == 1 ? float(1 - 1e-3 * 0.01) : 1.f;
          c.bc2_sqrt = float(std::sqrt(1 - std::pow(0.999, t)));
          c.eps = 1e-8f;
          c.neg_step_size = float(-(1e-3 / (1 - std::pow(0.9, t))));
          Tensor p = rand_tensor({n}, ++seed), g = rand_tensor({n}, ++seed);
          Tensor m = rand_tensor({n}, ++seed, -0.1f, 0.1f),
                 v = rand_tensor({n}, ++seed, 0.f, 0.01f);
          Tensor vm = rand_tensor({n}, ++seed, 0.f, 0.01f);
          if (n > 5) vm.data()[n - 2] = std::numeric_limits<float>::quiet_NaN();  // NaN wins
          Tensor p2 = p.clone(), m2 = m.clone(), v2 = v.clone(), vm2 = vm.clone();
          adam_update(p.data(), g.data(), m.data(), v.data(), ams ? vm.data() : nullptr, n, c);
          adam_update_ref(p2.data(), g.data(), m2.data(), v2.data(), ams ? vm2.data() : nullptr, n,
                          c);
          INFO("n=", n, " kind=", kind, " amsgrad=", ams);
          CHECK(same_bits(p, p2));
          CHECK(same_bits(m, m2));
          CHECK(same_bits(v, v2));
          CHECK(same_bits(vm, vm2));
          if (ams && n > 5) CHECK(std::isnan(vm.data()[n - 2]));
        }
  }

  TEST_CASE("one Adam step from zero moments is -lr * sign(g) (up to eps)") {
    // t = 1: m = (1-b1) g, v = (1-b2) g^2, so m / (1-b1) / (sqrt(v) / sqrt(1-b2)) = sign(g).
    const int64_t n = 37;
    AdamStep c{0.9f,
               float(1 - 0.9),
               0.999f,
               float(1 - 0.999),
               0.f,
               1.f,
               float(std::sqrt(1 - 0.999)),
               0.f,
               float(-(0.01 / (1 - 0.9)))};
    Tensor p = Tensor::zeros({n}), g = rand_tensor({n}, 3), m = Tensor::zeros({n}),
           v = Tensor::zeros({n});
    adam_update(p.data(), g.data(), m.data(), v.data(), nullptr, n, c);
    for (int64_t i = 0; i < n; ++i)
      CHECK(p.data()[i] == doctest::Approx(g.data()[i] > 0 ? -0.01 : 0.01).epsilon(1e-5));
  }
}

}  // namespace
}  // namespace qkv
