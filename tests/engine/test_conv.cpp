// conv2d forward/backward (im2col + GEMM) against the direct double-precision
// loops over stride/padding/dilation/groups combinations (1x1, 3x3, 7x7, odd
// sizes), pooling forward/backward against their plain loops, shape errors,
// and bitwise-identical results at 1 and 2 threads.
#include <string>

#include "engine/kernels/conv.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::expect_close;
using test::rand_tensor;
using test::tol_for;

struct ConvCase {
  int64_t N, C, H, W, O, KH, KW;
  Conv2dSpec s;
};

std::string name_of(const ConvCase& c) {
  const auto& s = c.s;
  return std::string("N") + std::to_string(c.N) + " C" + std::to_string(c.C) + " " + std::to_string(c.H) +
         "x" + std::to_string(c.W) + " O" + std::to_string(c.O) + " k" + std::to_string(c.KH) +
         "x" + std::to_string(c.KW) + " s" + std::to_string(s.stride_h) + "," +
         std::to_string(s.stride_w) + " p" + std::to_string(s.pad_h) + "," +
         std::to_string(s.pad_w) + " d" + std::to_string(s.dil_h) + "," +
         std::to_string(s.dil_w) + " g" + std::to_string(s.groups);
}

std::vector<ConvCase> cases() {
  return {
      {2, 3, 5, 5, 4, 1, 1, {}},                      // 1x1 pointwise (no im2col)
      {3, 4, 7, 6, 6, 1, 1, {1, 1, 0, 0, 1, 1, 2}},   // pointwise, grouped
      {2, 3, 8, 8, 4, 1, 1, {2, 2, 0, 0, 1, 1, 1}},   // 1x1 stride 2 (im2col)
      {2, 3, 9, 7, 5, 3, 3, {1, 1, 1, 1, 1, 1, 1}},   // 3x3 same
      {2, 3, 9, 7, 5, 3, 3, {1, 1, 0, 0, 1, 1, 1}},   // 3x3 valid
      {3, 4, 11, 13, 6, 3, 3, {2, 2, 1, 1, 1, 1, 2}}, // stride 2, groups 2
      {2, 4, 10, 9, 4, 3, 3, {1, 1, 2, 2, 2, 2, 4}},  // dilation 2, depthwise
      {2, 2, 15, 17, 3, 7, 7, {2, 2, 3, 3, 1, 1, 1}}, // 7x7 stem-like, 2 channels
      {1, 2, 13, 11, 4, 7, 7, {1, 1, 0, 0, 1, 1, 1}}, // 7x7 valid, one image
      {2, 3, 7, 9, 2, 3, 5, {1, 2, 2, 1, 2, 1, 1}},   // rectangular kernel, mixed params
      {5, 6, 6, 5, 6, 2, 3, {3, 1, 1, 0, 1, 2, 3}},   // odd everything, groups 3
      {9, 2, 5, 5, 2, 3, 3, {1, 1, 1, 1, 1, 1, 1}},   // more images than blocks
  };
}

TEST_SUITE("engine/conv") {
  TEST_CASE("conv2d forward matches the direct loops") {
    uint64_t seed = 1;
    for (const auto& c : cases()) {
      const Tensor x = rand_tensor({c.N, c.C, c.H, c.W}, seed++);
      const Tensor w = rand_tensor({c.O, c.C / c.s.groups, c.KH, c.KW}, seed++);
      const Tensor b = rand_tensor({c.O}, seed++);
      const double tol = tol_for(c.C / c.s.groups * c.KH * c.KW);
      expect_close(conv2d_forward(x, w, b, c.s), conv2d_forward_ref(x, w, b, c.s), tol,
                   name_of(c) + " bias");
      expect_close(conv2d_forward(x, w, Tensor(), c.s), conv2d_forward_ref(x, w, Tensor(), c.s),
                   tol, name_of(c) + " no bias");
    }
  }

  TEST_CASE("conv2d forward: known values") {
    // 1 channel 3x3 input, 2x2 kernel of ones, pad 0 -> window sums, + bias.
    const Tensor x = Tensor::from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    const Tensor w = ones({1, 1, 2, 2});
    const Tensor b = Tensor::from({1}, {0.5f});
    const Tensor y = conv2d_forward(x, w, b, {});
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector() == std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f});
  }

  TEST_CASE("conv2d backward matches the brute-force loops") {
    uint64_t seed = 100;
    for (const auto& c : cases()) {
      const Tensor x = rand_tensor({c.N, c.C, c.H, c.W}, seed++);
      const Tensor w = rand_tensor({c.O, c.C / c.s.groups, c.KH, c.KW}, seed++);
      const Conv2dGeom g = conv2d_geom(x.shape(), w.shape(), nullptr, c.s);
      const Tensor dy = rand_tensor({c.N, c.O, g.HO, g.WO}, seed++);
      const Conv2dGrads got = conv2d_backward(x, w, dy, c.s, true, true, true);
      const Conv2dGrads want = conv2d_backward_ref(x, w, dy, c.s, true, true, true);
      expect_close(got.dx, want.dx, tol_for(c.O / c.s.groups * c.KH * c.KW), name_of(c) + " dx");
      expect_close(got.dw, want.dw, tol_for(c.N * g.HO * g.WO), name_of(c) + " dw");
      expect_close(got.db, want.db, tol_for(c.N * g.HO * g.WO), name_of(c) + " db");
      // Partial requests give the same values and leave the rest undefined.
      const Conv2dGrads only_w = conv2d_backward(x, w, dy, c.s, false, true, false);
      CHECK(!only_w.dx.defined());
      CHECK(!only_w.db.defined());
      CHECK(only_w.dw.to_vector() == got.dw.to_vector());
      const Conv2dGrads only_x = conv2d_backward(x, w, dy, c.s, true, false, false);
      CHECK(!only_x.dw.defined());
      CHECK(only_x.dx.to_vector() == got.dx.to_vector());
    }
  }

  TEST_CASE("conv2d: identical bits at 1 and 2 threads") {
    const int saved = num_threads();
    const ConvCase c{6, 8, 20, 19, 8, 3, 3, {1, 1, 1, 1, 1, 1, 2}};
    const Tensor x = rand_tensor({c.N, c.C, c.H, c.W}, 7);
    const Tensor w = rand_tensor({c.O, c.C / 2, 3, 3}, 8);
    const Tensor b = rand_tensor({c.O}, 9);
    const Tensor dy = rand_tensor({c.N, c.O, c.H, c.W}, 10);
    const Pool2dSpec p{3, 3, 2, 2, 1, 1};
    std::vector<std::vector<float>> res[2];
    for (int t : {1, 2}) {
      set_num_threads(t);
      auto& r = res[t - 1];
      r.push_back(conv2d_forward(x, w, b, c.s).to_vector());
      const Conv2dGrads g = conv2d_backward(x, w, dy, c.s, true, true, true);
      r.push_back(g.dx.to_vector());
      r.push_back(g.dw.to_vector());
      r.push_back(g.db.to_vector());
      const MaxPool2dResult m = max_pool2d_forward(x, p);
      r.push_back(m.y.to_vector());
      r.push_back(max_pool2d_backward(m.y, m.idx, x.shape()).to_vector());
      const Tensor a = avg_pool2d_forward(x, p);
      r.push_back(a.to_vector());
      r.push_back(avg_pool2d_backward(a, x.shape(), p).to_vector());
    }
    set_num_threads(saved);
    for (size_t i = 0; i < res[0].size(); ++i) {
      INFO("result ", i);
      CHECK(res[0][i] == res[1][i]);
    }
  }

  TEST_CASE("pooling forward and backward match the plain loops") {
    const std::vector<Pool2dSpec> specs = {
        {2, 2, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1}, {3, 3, 1, 1, 1, 1},
        {2, 3, 1, 2, 1, 1}, {5, 5, 3, 2, 2, 0}, {1, 1, 1, 1, 0, 0},
    };
    uint64_t seed = 500;
    for (const auto& p : specs)
      for (const Shape& xs : {Shape{2, 3, 7, 9}, Shape{1, 2, 6, 5}, Shape{3, 1, 11, 8}}) {
        const std::string what = shape_str(xs) + " k" + std::to_string(p.kh) + "x" +
                                 std::to_string(p.kw) + " s" + std::to_string(p.stride_h) + "," +
                                 std::to_string(p.stride_w) + " p" + std::to_string(p.pad_h) +
                                 "," + std::to_string(p.pad_w);
        const Tensor x = rand_tensor(xs, seed++);
        const MaxPool2dResult m = max_pool2d_forward(x, p), mr = max_pool2d_forward_ref(x, p);
        CHECK_MESSAGE(m.y.to_vector() == mr.y.to_vector(), what);
        CHECK_MESSAGE(m.idx.to_vector() == mr.idx.to_vector(), what);
        const Tensor dy = rand_tensor(m.y.shape(), seed++);
        // Max backward by brute force: every output adds dy at its argmax.
        Tensor want = zeros(xs);
        for (int64_t n = 0; n < xs[0]; ++n)
          for (int64_t c = 0; c < xs[1]; ++c)
            for (int64_t i = 0; i < m.y.size(2) * m.y.size(3); ++i) {
              const int64_t plane = n * xs[1] + c, k = mr.idx.data()[plane * m.y.size(2) * m.y.size(3) + i];
              want.data()[plane * xs[2] * xs[3] + k] += dy.data()[plane * m.y.size(2) * m.y.size(3) + i];
            }
        expect_close(max_pool2d_backward(dy, m.idx, xs), want, 1e-6, what + " max backward");
        expect_close(avg_pool2d_forward(x, p), avg_pool2d_forward_ref(x, p),
                     tol_for(p.kh * p.kw), what + " avg");
        expect_close(avg_pool2d_backward(dy, xs, p), avg_pool2d_backward_ref(dy, xs, p),
                     tol_for(p.kh * p.kw), what + " avg backward");
      }
  }

  TEST_CASE("max_pool2d: ties take the first max, padding never wins") {
    // All equal negative values: padding (which would be -inf or 0) must not win,
    // and the index is the first element of each window.
    const Tensor x = full({1, 1, 3, 3}, -2.f);
    const MaxPool2dResult m = max_pool2d_forward(x, {3, 3, 2, 2, 1, 1});
    CHECK(m.y.shape() == Shape{1, 1, 2, 2});
    CHECK(m.y.to_vector() == std::vector<float>{-2.f, -2.f, -2.f, -2.f});
    CHECK(m.idx.to_vector() == std::vector<int32_t>{0, 1, 3, 4});
    const Tensor t = Tensor::from({1, 1, 2, 2}, {1, 5, 5, 2});
    const MaxPool2dResult m2 = max_pool2d_forward(t, {2, 2, 2, 2, 0, 0});
    CHECK(m2.y.item() == 5.f);
    CHECK(m2.idx.data()[0] == 1);
  }

  TEST_CASE("avg_pool2d counts padding (count_include_pad)") {
    const Tensor x = ones({1, 1, 2, 2});
    const Tensor y = avg_pool2d_forward(x, {2, 2, 2, 2, 1, 1});
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector() == std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f});
  }

  TEST_CASE("conv2d and pooling shape errors name the op and shapes") {
    const Tensor x = zeros({1, 3, 5, 5});
    auto err = [](auto f) { return test::error_of(f); };
    CHECK(err([&] { conv2d_forward(x, zeros({4, 1, 3, 3}), Tensor(), {1, 1, 0, 0, 1, 1, 2}); }) ==
          "conv2d: input channels 3 not divisible by groups 2 (x [1,3,5,5], w [4,1,3,3])");
    CHECK(err([&] { conv2d_forward(x, zeros({3, 3, 3, 3}), Tensor(), {1, 1, 0, 0, 1, 1, 3}); }) ==
          "conv2d: w has 3 input channels per group, expected 1 (x [1,3,5,5], w [3,3,3,3], "
          "groups 3)");
    CHECK(err([&] { conv2d_forward(x, zeros({2, 3, 7, 7}), Tensor(), {}); }) ==
          "conv2d: kernel (dilated 7x7) larger than padded input 5x5 (x [1,3,5,5], w [2,3,7,7])");
    CHECK(err([&] { conv2d_forward(x, zeros({2, 3, 3, 3}), Tensor(), {1, 1, 0, 0, 3, 3, 1}); }) ==
          "conv2d: kernel (dilated 7x7) larger than padded input 5x5 (x [1,3,5,5], w [2,3,3,3])");
    CHECK(err([&] { conv2d_forward(x, zeros({2, 3, 3, 3}), Tensor(), {0, 1}); }) ==
          "conv2d: stride must be positive, got (0,1)");
    CHECK(err([&] { conv2d_forward(x, zeros({2, 3, 3, 3}), zeros({3}), {}); }) ==
          "conv2d: bias has shape [3], expected [2] (w [2,3,3,3])");
    CHECK(err([&] { conv2d_forward(zeros({3, 5, 5}), zeros({2, 3, 3, 3}), Tensor(), {}); }) ==
          "conv2d: expected x of shape [N,C,H,W], got [3,5,5]");
    CHECK(err([&] { conv2d_backward(x, zeros({2, 3, 3, 3}), zeros({1, 2, 4, 4}), {}, 1, 1, 1); }) ==
          "conv2d_backward: dy has shape [1,2,4,4], expected [1,2,3,3]");
    CHECK(err([&] { max_pool2d_forward(x, {2, 2, 0, 2, 0, 0}); }) ==
          "max_pool2d: stride must be positive, got (0,2)");
    CHECK(err([&] { avg_pool2d_forward(x, {2, 2, 2, 2, 2, 0}); }) ==
          "avg_pool2d: padding (2,0) must be >= 0 and at most half the kernel 2x2");
    CHECK(err([&] { max_pool2d_forward(x, {7, 2, 1, 1, 0, 0}); }) ==
          "max_pool2d: kernel 7x2 larger than padded input 5x5 (x [1,3,5,5])");
  }
}

}  // namespace
}  // namespace qkv
