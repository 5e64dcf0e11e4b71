// The MSE and BCE-with-logits kernels against their double-precision
// references over sizes with tails (and past the thread threshold), with a
// per-element upstream and with a scalar one; BCE at large |x| stays finite.
#include <string>

#include "engine/kernels/loss.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::expect_close;
using test::rand_tensor;

TEST_SUITE("engine/loss") {
  TEST_CASE("mse_forward and mse_backward equal their references") {
    uint64_t seed = 1;
    std::vector<int64_t> sizes = test::kSizes;
    sizes.push_back(70001);
    for (int64_t n : sizes) {
      const std::string what = "n=" + std::to_string(n);
      Tensor p = rand_tensor({n}, ++seed), t = rand_tensor({n}, ++seed),
             up = rand_tensor({n}, ++seed);
      Tensor d({n}), sq({n}), d_ref({n}), sq_ref({n});
      mse_forward(p.data(), t.data(), d.data(), sq.data(), n);
      mse_forward_ref(p.data(), t.data(), d_ref.data(), sq_ref.data(), n);
      expect_close(d, d_ref, 0, what + " diff");
      expect_close(sq, sq_ref, 1e-7, what + " sq");
      Tensor g({n}), g_ref({n});
      for (const float* dl :
           {static_cast<const float*>(nullptr), static_cast<const float*>(up.data())}) {
        mse_backward(d.data(), dl, 0.25f, g.data(), n);
        mse_backward_ref(d.data(), dl, 0.25f, g_ref.data(), n);
        expect_close(g, g_ref, 1e-7, what + (dl ? " dpred (per element)" : " dpred (scale)"));
      }
    }
  }

  TEST_CASE("bce_with_logits forward and backward equal their references") {
    uint64_t seed = 100;
    std::vector<int64_t> sizes = test::kSizes;
    sizes.push_back(5001);
    for (int64_t n : sizes) {
      const std::string what = "n=" + std::to_string(n);
      Tensor x = rand_tensor({n}, ++seed, -30.f, 30.f), y = rand_tensor({n}, ++seed, 0.f, 1.f);
      Tensor up = rand_tensor({n}, ++seed);
      if (n > 2) x.data()[0] = 90.f, x.data()[1] = -90.f;  // exp(90) overflows float
      Tensor l({n}), l_ref({n});
      bce_with_logits_forward(x.data(), y.data(), l.data(), n);
      bce_with_logits_forward_ref(x.data(), y.data(), l_ref.data(), n);
      // max(x,0) - x*y cancels terms as large as |x| = 30 (ulp 1.9e-6), and whether
      // the compiler contracts x*y into an FMA moves the result by a few of them.
      expect_close(l, l_ref, 1e-5, what + " loss");
      Tensor dx({n}), dy({n}), dx_ref({n}), dy_ref({n});
      for (const float* dl :
           {static_cast<const float*>(nullptr), static_cast<const float*>(up.data())}) {
        bce_with_logits_backward(x.data(), y.data(), dl, 0.5f, dx.data(), dy.data(), n);
        bce_with_logits_backward_ref(x.data(), y.data(), dl, 0.5f, dx_ref.data(), dy_ref.data(), n);
        expect_close(dx, dx_ref, 1e-6, what + " dx");
        expect_close(dy, dy_ref, 1e-7, what + " dy");
      }
      // either output alone
      bce_with_logits_backward(x.data(), y.data(), nullptr, 1.f, nullptr, dy.data(), n);
      bce_with_logits_backward_ref(x.data(), y.data(), nullptr, 1.f, nullptr, dy_ref.data(), n);
      expect_close(dy, dy_ref, 1e-7, what + " dy alone");
    }
  }
}

}  // namespace
}  // namespace qkv
