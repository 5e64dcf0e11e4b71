// CBAM's fused gate kernels against their *_ref oracles over pixel counts
// with SIMD tails, one and several channels, ties in the channel max, and
// with each optional output left out.
#include <vector>

#include "engine/kernels/gate.h"
#include "engine/kernels/pool.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

TEST_SUITE("engine/gate") {
  TEST_CASE("scaled channel pool and gate, forward and backward, match the references") {
    uint64_t seed = 1;
    for (int64_t HW : test::kSizes)
      for (int64_t C : {1, 3, 17})
        for (int64_t B : {1, 3}) {
          const std::string what = std::string("B") + std::to_string(B) + " C" +
                                   std::to_string(C) + " HW" + std::to_string(HW);
          Tensor x = test::rand_tensor({B, C, HW}, seed++);
          if (C > 1)  // a tie: channel 1 equals channel 0 at every pixel (first max wins)
            for (int64_t b = 0; b < B; ++b)
              for (int64_t p = 0; p < HW; ++p)
                x.data()[(b * C + 1) * HW + p] = x.data()[b * C * HW + p];
          Tensor s = full({B, C}, 1.f);  // equal gates keep the tie
          if (C > 2) s = test::rand_tensor({B, C}, seed++, 0.5f, 1.5f);
          const Tensor m = test::rand_tensor({B, HW}, seed++, 0.f, 1.f);
          const Tensor g = test::rand_tensor({B, C, HW}, seed++);
          const Tensor dp = test::rand_tensor({B, 2, HW}, seed++);

          // x*s pooled over channels (pool.h), argmax in the max plane of arg
          Tensor out({B, 2, HW}), rout({B, 2, HW});
          IntTensor arg({B, 2, HW}), rarg({B, 2, HW});
          channel_pool_forward(x.data(), s.data(), B, C, HW, out.data(), out.data() + HW,
                               arg.data() + HW, 2 * HW);
          channel_pool_forward_ref(x.data(), s.data(), B, C, HW, rout.data(), rout.data() + HW,
                                   rarg.data() + HW, 2 * HW);
          test::expect_close(out, rout, 1e-6, what + " pooled");
          for (int64_t b = 0; b < B; ++b)
            for (int64_t p = 0; p < HW; ++p)
              REQUIRE(arg.data()[(2 * b + 1) * HW + p] == rarg.data()[(2 * b + 1) * HW + p]);

          Tensor dx(x.shape()), rdx(x.shape()), ds({B, C}), rds({B, C});
          scaled_channel_pool_backward(dp.data(), arg.data() + HW, x.data(), s.data(), B, C, HW,
                                       dx.data(), ds.data());
          scaled_channel_pool_backward_ref(dp.data(), rarg.data() + HW, x.data(), s.data(), B, C,
                                           HW, rdx.data(), rds.data());
          test::expect_close(dx, rdx, 1e-6, what + " pool dx");
          test::expect_close(ds, rds, test::tol_for(HW), what + " pool ds");
          Tensor ds_only({B, C});
          scaled_channel_pool_backward(dp.data(), arg.data() + HW, x.data(), s.data(), B, C, HW,
                                       nullptr, ds_only.data());
          CHECK(ds_only.to_vector() == ds.to_vector());

          Tensor y(x.shape()), ry(x.shape());
          gate_forward(x.data(), s.data(), m.data(), B, C, HW, y.data());
          gate_forward_ref(x.data(), s.data(), m.data(), B, C, HW, ry.data());
          test::expect_close(y, ry, 1e-6, what + " gate");

          Tensor gdx(x.shape()), rgdx(x.shape()), gds({B, C}), rgds({B, C}), gdm({B, HW}),
              rgdm({B, HW});
          gate_backward(g.data(), x.data(), s.data(), m.data(), B, C, HW, gdx.data(), gds.data(),
                        gdm.data());
          gate_backward_ref(g.data(), x.data(), s.data(), m.data(), B, C, HW, rgdx.data(),
                            rgds.data(), rgdm.data());
          test::expect_close(gdx, rgdx, 1e-6, what + " gate dx");
          test::expect_close(gds, rgds, test::tol_for(HW), what + " gate ds");
          test::expect_close(gdm, rgdm, test::tol_for(C), what + " gate dm");
          Tensor dm_only({B, HW});
          gate_backward(g.data(), x.data(), s.data(), m.data(), B, C, HW, nullptr, nullptr,
                        dm_only.data());
          CHECK(dm_only.to_vector() == gdm.to_vector());
        }
  }
}

}  // namespace
}  // namespace qkv
