// Dropout: identity in eval and at p = 0, inverted scaling, the drop rate,
// reproducibility from the seed, and a gradient equal to the mask.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/collective.h"
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

  // Data-parallel: a slice of the batch (batch_rows() set, as the trainer does
  // per rank) draws the whole batch's masks for its rows, batch-first or
  // time-major, and leaves the generator where the whole batch would; so does
  // fused attention dropout.
  TEST_CASE("a batch slice draws the whole batch's masks for its rows") {
    const int64_t B = 5, T = 4, D = 7;  // T differs from both slices' rows (2, 3)
    for (int axis : {0, 1}) {
      CAPTURE(axis);
      const Shape whole = axis == 0 ? Shape{B, T, D} : Shape{T, B, D};
      Generator g(3);
      const Tensor all = dropout(Var(ones(whole)), 0.4f, true, g).value();
      for (auto [begin, end] : {std::pair{0, 2}, std::pair{2, 5}}) {
        Generator h(3);
        Tensor part;
        {
          BatchRowsScope rows(begin, end - begin, B);
          Shape s = whole;
          s[size_t(axis)] = end - begin;
          part = dropout(Var(ones(s)), 0.4f, true, h).value();
        }
        CHECK(h.counter() == g.counter());
        CHECK(part.to_vector() == slice(all, axis, begin, end).to_vector());
      }
    }
    const int64_t NH = 2, S = 6;
    Generator g(4);
    Var q(test::rand_tensor({B, NH, T, D}, 1)), k(test::rand_tensor({B, NH, S, D}, 2)),
        v(test::rand_tensor({B, NH, S, D}, 3));
    const Tensor all =
        scaled_dot_product_attention(q, k, v, false, nullptr, Tensor(), 0.f, 0.5f, &g).value();
    Generator h(4);
    BatchRowsScope rows(2, 3, B);
    auto rows_of = [](const Var& x) { return Var(x.value().narrow_rows(2, 5)); };
    const Tensor part = scaled_dot_product_attention(rows_of(q), rows_of(k), rows_of(v), false,
                                                     nullptr, Tensor(), 0.f, 0.5f, &h)
                            .value();
    CHECK(h.counter() == g.counter());
    CHECK(part.to_vector() == all.narrow_rows(2, 5).to_vector());
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
