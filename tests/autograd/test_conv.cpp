// conv2d, max_pool2d and avg_pool2d gradients against finite differences on
// small instances, plus the op-level error messages and no-bias/no-grad paths.
#include "autograd/ops.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

using test::expect_ok;
using test::rv;

TEST_SUITE("autograd/conv") {
  TEST_CASE("conv2d gradcheck: bias, no bias, groups, stride, dilation") {
    struct Case {
      Shape x, w;
      Conv2dParams p;
      bool bias;
      const char* what;
    };
    const std::vector<Case> cases = {
        {{2, 2, 5, 5}, {3, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 1}, true, "3x3 pad 1 bias"},
        {{2, 2, 5, 4}, {3, 2, 3, 3}, {}, false, "3x3 valid no bias"},
        {{1, 4, 5, 5}, {4, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 2}, true, "groups 2"},
        {{2, 2, 7, 6}, {2, 2, 3, 3}, {2, 2, 1, 0, 1, 1, 1}, true, "stride 2"},
        {{1, 2, 7, 7}, {2, 2, 3, 3}, {1, 1, 2, 1, 2, 2, 1}, false, "dilation 2"},
        {{2, 3, 4, 4}, {2, 3, 1, 1}, {}, true, "1x1"},
    };
    uint64_t seed = 11;
    for (const auto& c : cases) {
      std::vector<Var> in{rv(c.x, seed++), rv(c.w, seed++)};
      if (c.bias) in.push_back(rv({c.w[0]}, seed++));
      const Conv2dParams p = c.p;
      expect_ok(
          [p](const std::vector<Var>& v) {
            return conv2d(v[0], v[1], v.size() > 2 ? v[2] : Var(), p);
          },
          in, c.what);
    }
  }

  TEST_CASE("conv2d: only the inputs that require grad get one") {
    Var x = rv({1, 2, 4, 4}, 3, -1.f, 1.f, false);
    Var w = rv({2, 2, 3, 3}, 4);
    Var b = rv({2}, 5, -1.f, 1.f, false);
    Var y = conv2d(x, w, b, {1, 1, 1, 1});
    backward(sum(y));
    CHECK(w.has_grad());
    CHECK(!x.has_grad());
    CHECK(!b.has_grad());
  }

  TEST_CASE("max_pool2d gradcheck (distinct values)") {
    // A permutation of well-separated values: unique maxima, no kinks within eps.
    for (const Pool2dParams& p :
         {Pool2dParams{2, 2, 2, 2, 0, 0}, Pool2dParams{3, 3, 2, 2, 1, 1},
          Pool2dParams{3, 2, 1, 1, 1, 0}}) {
      const int64_t n = 2 * 2 * 5 * 6;
      Tensor t(Shape{2, 2, 5, 6});
      for (int64_t i = 0; i < n; ++i) t.data()[i] = float((i * 37) % n) * 0.1f - 5.f;
      Var x(t, true);
      GradcheckOptions opt;
      opt.eps = 1e-3;  // steps well below the 0.1 gap between values
      expect_ok([p](const std::vector<Var>& v) { return max_pool2d(v[0], p); }, {x},
                "max_pool2d k" + std::to_string(p.kh) + "x" + std::to_string(p.kw), opt);
    }
  }

  TEST_CASE("avg_pool2d gradcheck with padding") {
    for (const Pool2dParams& p :
         {Pool2dParams{2, 2, 2, 2, 1, 1}, Pool2dParams{3, 3, 2, 1, 1, 1},
          Pool2dParams{3, 3, 1, 1, 0, 0}}) {
      expect_ok([p](const std::vector<Var>& v) { return avg_pool2d(v[0], p); },
                {rv({2, 3, 5, 6}, 21)}, "avg_pool2d k" + std::to_string(p.kh));
    }
  }

  TEST_CASE("avg_pool2d values: count_include_pad") {
    Var x(ones({1, 1, 3, 3}), false);
    Var y = avg_pool2d(x, {3, 3, 1, 1, 1, 1});
    // corner: 4 real of 9, edge: 6 of 9, centre: 9 of 9
    CHECK(y.value().at({0, 0, 0, 0}) == doctest::Approx(4.0 / 9));
    CHECK(y.value().at({0, 0, 0, 1}) == doctest::Approx(6.0 / 9));
    CHECK(y.value().at({0, 0, 1, 1}) == doctest::Approx(1.0));
  }

  TEST_CASE("conv2d / pooling op errors") {
    Var x(zeros({1, 3, 5, 5}));
    CHECK(test::error_of([&] { conv2d(x, Var(zeros({4, 1, 3, 3})), Var(), {1, 1, 0, 0, 1, 1, 2}); }) ==
          "conv2d: input channels 3 not divisible by groups 2 (x [1,3,5,5], w [4,1,3,3])");
    CHECK(test::error_of([&] { max_pool2d(x, {6, 6, 1, 1, 0, 0}); }) ==
          "max_pool2d: kernel 6x6 larger than padded input 5x5 (x [1,3,5,5])");
    CHECK(test::error_of([&] { avg_pool2d(x, {2, 2, -1, 1, 0, 0}); }) ==
          "avg_pool2d: stride must be positive, got (-1,1)");
  }
}

}  // namespace
}  // namespace qkv
