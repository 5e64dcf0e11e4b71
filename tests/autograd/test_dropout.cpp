// Dropout: identity in eval and at p = 0, inverted scaling, the drop rate,
// reproducibility from the seed, and a gradient equal to the mask.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/rng.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

TEST_SUITE("autograd/dropout") {
  TEST_CASE("eval and p = 0 are the identity") {
    Generator g(1);
    Var x(test::rand_tensor({4, 5}, 1), true);
    CHECK(dropout(x, 0.5f, false, g).value().shares_storage(x.value()));
    CHECK(dropout(x, 0.f, true, g).value().shares_storage(x.value()));
    CHECK(g.counter() == 0);  // no randomness consumed
  }

  TEST_CASE("drop rate, scaling, reproducibility") {
    Generator g1(7), g2(7);
    Var x(ones({100000}), false);
    Tensor y1 = dropout(x, 0.3f, true, g1).value(), y2 = dropout(x, 0.3f, true, g2).value();
    CHECK(y1.to_vector() == y2.to_vector());
    int64_t zeros_ = 0;
    for (float v : y1) {
      if (v == 0.f) ++zeros_;
      else REQUIRE(v == doctest::Approx(1.f / 0.7f));
    }
    CHECK(double(zeros_) / 100000 == doctest::Approx(0.3).epsilon(0.03));
  }

  TEST_CASE("gradient is the mask") {
    Var x(test::rand_tensor({6, 7}, 2), true);
    auto r = gradcheck(
        [](const std::vector<Var>& in) {
          Generator g(3);  // the same mask on every call
          return dropout(in[0], 0.4f, true, g);
        },
        {x});
    INFO(r.report);
    CHECK(r.ok);
    CHECK_THROWS_WITH_AS([&] { Generator g(0); dropout(x, 1.f, true, g); }(),
                         doctest::Contains("dropout: expected 0 <= p < 1, got 1"), Error);
  }
}

}  // namespace
}  // namespace qkv
