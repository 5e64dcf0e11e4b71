// conv2d (im2col with batched images, and direct paths), the windowed, adaptive and channel pools
// and batch_norm: gradients against finite differences on small instances,
// plus values, the running-statistics update, op-level error messages and
// no-bias/no-grad paths.
#include <cmath>

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
        {{2, 2, 6, 7}, {1, 2, 7, 7}, {1, 1, 3, 3, 1, 1, 1}, false, "direct 7x7 2->1 (CBAM)"},
        {{1, 2, 6, 7}, {1, 2, 3, 3}, {2, 1, 1, 1, 1, 2, 1}, true, "direct stride/dilation"},
        // im2col + GEMM (Og > 4), several images per GEMM
        {{3, 2, 4, 5}, {6, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 1}, true, "batched 3x3 pad 1"},
        {{3, 4, 5, 4}, {10, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 2}, true, "batched groups 2"},
        {{3, 2, 7, 6}, {5, 2, 3, 3}, {2, 2, 1, 0, 1, 1, 1}, false, "batched stride 2 (col2im)"},
        {{3, 2, 7, 7}, {5, 2, 3, 3}, {1, 1, 2, 1, 2, 2, 1}, true, "batched dilation 2"},
        {{3, 6, 4, 5}, {5, 6, 3, 3}, {1, 1, 1, 1, 1, 1, 1}, true, "batched dx by transposed conv"},
        {{3, 12, 5, 4}, {10, 6, 3, 3}, {1, 1, 2, 1, 2, 1, 2}, false, "transposed conv, groups 2"},
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

  // A permutation of well-separated values: unique maxima, no kinks within eps.
  Tensor separated(const Shape& s, int64_t mul) {
    Tensor t(s);
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) t.data()[i] = float((i * mul) % n) * 0.1f - 3.f;
    return t;
  }

  TEST_CASE("adaptive pools gradcheck (divisible, overlapping, global)") {
    GradcheckOptions opt;
    opt.eps = 1e-3;
    for (auto [oh, ow] : {std::pair<int64_t, int64_t>{1, 1}, {3, 2}, {2, 4}}) {
      const std::string what = std::to_string(oh) + "x" + std::to_string(ow);
      expect_ok([oh, ow](const std::vector<Var>& v) { return adaptive_avg_pool2d(v[0], oh, ow); },
                {rv({2, 3, 5, 6}, 31)}, "adaptive_avg_pool2d " + what);
      expect_ok([oh, ow](const std::vector<Var>& v) { return adaptive_max_pool2d(v[0], oh, ow); },
                {Var(separated({2, 3, 5, 6}, 37), true)}, "adaptive_max_pool2d " + what, opt);
    }
  }

  TEST_CASE("channel mean / max / pool gradcheck and values") {
    GradcheckOptions opt;
    opt.eps = 1e-3;
    const Var x(separated({2, 3, 4, 5}, 41), true);
    expect_ok([](const std::vector<Var>& v) { return channel_mean(v[0]); }, {x}, "channel_mean", opt);
    expect_ok([](const std::vector<Var>& v) { return channel_max(v[0]); }, {x}, "channel_max", opt);
    expect_ok([](const std::vector<Var>& v) { return channel_pool(v[0]); }, {x}, "channel_pool", opt);
    // channel_pool == concat(mean, max) and both agree with the reductions.
    NoGrad ng;
    const Var p = channel_pool(x);
    CHECK(p.shape() == Shape{2, 2, 4, 5});
    test::expect_close(p.value(), concat({mean(x, {1}, true), max(x, 1, true)}, 1).value(), 1e-6,
                       "channel_pool vs mean/max");
  }

  TEST_CASE("CBAM's fused gates: gradcheck, and equal to the composite ops") {
    GradcheckOptions opt;
    opt.eps = 1e-3;
    const Shape xs{2, 3, 4, 5};
    const Var x(separated(xs, 41), true);
    // channel gates near 1 and distinct per channel, so x * s keeps the
    // channel maxima apart by more than eps
    Tensor st({2, 3, 1, 1});
    for (int64_t i = 0; i < st.numel(); ++i) st.data()[i] = 1.f + 0.013f * float(i);
    const Var s(st, true);
    const Var m = rv({2, 1, 4, 5}, 43, 0.1f, 0.9f);
    expect_ok([](const std::vector<Var>& v) { return channel_pool_scaled(v[0], v[1]); }, {x, s},
              "channel_pool_scaled", opt);
    expect_ok([](const std::vector<Var>& v) { return gate(v[0], v[1], v[2]); },
              {rv(xs, 44), rv({2, 3, 1, 1}, 45), m}, "gate");
    // values and gradients equal channel_pool(x * s) and x * s * m
    const Tensor up = test::rand_tensor(xs, 46), up2 = test::rand_tensor({2, 2, 4, 5}, 47);
    auto grads = [&](bool fused) {
      Var a(x.value(), true), b(s.value(), true), c(m.value(), true);
      Var p = fused ? channel_pool_scaled(a, b) : channel_pool(a * b);
      Var y = fused ? gate(a, b, c) : a * b * c;
      backward(sum(p * Var(up2)) + sum(y * Var(up)));
      return std::vector<Tensor>{p.value(), y.value(), a.grad(), b.grad(), c.grad()};
    };
    const auto f = grads(true), r = grads(false);
    const char* names[] = {"pooled", "gated", "dx", "ds", "dm"};
    for (size_t i = 0; i < f.size(); ++i)
      test::expect_close(f[i], r[i], 1e-5, std::string("fused gates vs composite: ") + names[i]);
  }

  TEST_CASE("CBAM's fused gates refuse mismatched gates") {
    const Var x = rv({2, 3, 4, 5}, 1);
    CHECK_THROWS_WITH_AS(gate(x, rv({2, 3, 1, 1}, 2), rv({2, 1, 5, 4}, 3)),
                         doctest::Contains("spatial gate has shape [2,1,5,4], expected [2,1,4,5]"), Error);
    CHECK_THROWS_WITH_AS(channel_pool_scaled(x, rv({2, 1, 4, 5}, 2)),
                         doctest::Contains("channel gate has shape"), Error);
  }

  TEST_CASE("channel_max: the gradient goes to the first max only") {
    Var x(Tensor::from({1, 3, 1, 2}, {2, 1, 2, 5, 1, 5}), true);  // c0 (2,1), c1 (2,5), c2 (1,5): ties
    backward(sum(channel_max(x)));
    CHECK(x.grad().to_vector() == std::vector<float>{1, 0, 0, 1, 0, 0});
  }

  TEST_CASE("batch_norm gradcheck: train and eval, with and without affine") {
    for (bool train : {true, false})
      for (bool affine : {true, false}) {
        std::vector<Var> in{rv({3, 2, 3, 2}, 61, -2.f, 2.f)};
        if (affine) in.push_back(rv({2}, 62, 0.5f, 1.5f)), in.push_back(rv({2}, 63));
        const Tensor rm = Tensor::from({2}, {0.1f, -0.2f}), rvar = Tensor::from({2}, {0.8f, 1.3f});
        expect_ok(
            [train, affine, rm, rvar](const std::vector<Var>& v) {
              // fresh copies: the training op updates the running stats
              return batch_norm(v[0], affine ? v[1] : Var(), affine ? v[2] : Var(), rm.clone(),
                                rvar.clone(), train);
            },
            in, std::string("batch_norm") + (train ? " train" : " eval") + (affine ? " affine" : ""));
      }
    expect_ok([](const std::vector<Var>& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true); },
              {rv({5, 3}, 64), rv({3}, 65), rv({3}, 66)}, "batch_norm 2-D, no running stats");
  }

  TEST_CASE("batch_norm: statistics and running update as torch") {
    // One channel, values 1..4: mean 2.5, biased var 1.25, unbiased 5/3.
    Var x(Tensor::from({4, 1}, {1, 2, 3, 4}), false);
    Tensor rm = zeros({1}), rvar = ones({1});
    Var y = batch_norm(x, Var(), Var(), rm, rvar, true, 0.1f, 0.f);
    CHECK(y.value().data()[0] == doctest::Approx(-1.5 / std::sqrt(1.25)));
    CHECK(rm.data()[0] == doctest::Approx(0.25));
    CHECK(rvar.data()[0] == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0));
    Var ye = batch_norm(x, Var(), Var(), rm, rvar, false, 0.1f, 0.f);
    CHECK(ye.value().data()[0] == doctest::Approx((1 - 0.25) / std::sqrt(0.9 + 0.5 / 3.0)));
    CHECK(rm.data()[0] == doctest::Approx(0.25));  // eval leaves them alone
  }

  TEST_CASE("pooling / batch_norm op errors") {
    Var x(zeros({1, 3, 5, 5}));
    CHECK(test::error_of([&] { adaptive_avg_pool2d(x, 0, 2); }) ==
          "adaptive_avg_pool2d: output size must be >= 1, got 0x2");
    CHECK(test::error_of([&] { channel_max(Var(zeros({3, 5, 5}))); }) ==
          "channel_max: expected x of shape [N,C,IH,IW], got [3,5,5]");
    CHECK(test::error_of([&] { batch_norm(x, Var(zeros({2})), Var(), Tensor(), Tensor(), true); }) ==
          "batch_norm: weight has shape [2], expected [3] (x [1,3,5,5])");
    CHECK(test::error_of([&] { batch_norm(x, Var(), Var(), Tensor(), Tensor(), false); }) ==
          "batch_norm: eval mode needs running_mean and running_var");
    CHECK(test::error_of([&] { batch_norm(Var(zeros({1, 3})), Var(), Var(), Tensor(), Tensor(), true); }) ==
          "batch_norm: training needs more than one value per channel, got x [1,3]");
  }
}

}  // namespace
}  // namespace qkv
