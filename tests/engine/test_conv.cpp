// Also: the adaptive and channel pools (pool.h) and batch norm (batchnorm.h)
// against their plain double loops, and which conv path each shape takes.
// conv2d forward/backward (im2col + GEMM, and direct) against the direct double-precision
// loops over stride/padding/dilation/groups combinations (1x1, 3x3, 7x7, odd
// sizes), pooling forward/backward against their plain loops, shape errors,
// and bitwise-identical results at 1 and 2 threads.
#include <algorithm>
#include <cmath>
#include <string>

#include "engine/kernels/batchnorm.h"
#include "engine/kernels/conv.h"
#include "engine/kernels/pool.h"
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
      {3, 2, 12, 19, 1, 7, 7, {1, 1, 3, 3, 1, 1, 1}}, // CBAM spatial 7x7 2->1 (direct)
      {2, 3, 9, 11, 4, 3, 3, {2, 3, 1, 2, 2, 1, 1}},  // direct, stride 2x3, dilation
      {2, 8, 6, 7, 16, 3, 3, {1, 1, 1, 1, 1, 1, 1}},  // im2col + GEMM (Og 16)
      // GEMM path with several images per GEMM (conv2d_images_per_gemm > 1);
      // backward blocks are N/8 images, split into batches of that many.
      {13, 4, 5, 6, 12, 3, 3, {1, 1, 1, 1, 1, 1, 2}},   // 13 images in one GEMM, groups 2
      {50, 4, 16, 17, 8, 3, 3, {1, 1, 1, 1, 1, 1, 1}},  // 4 per GEMM, blocks of 6-7: 4 + 2/3
      {45, 2, 35, 35, 6, 3, 3, {2, 2, 1, 1, 2, 2, 1}},  // stride 2, dilation 2
      {11, 6, 9, 10, 15, 3, 3, {2, 2, 1, 1, 2, 1, 3}},  // groups 3 (Og 5), stride 2
      {7, 3, 6, 6, 5, 3, 3, {1, 1, 3, 3, 1, 1, 1}},     // pad > kernel-1
      {5, 3, 9, 8, 6, 3, 3, {1, 1, 0, 0, 2, 2, 1}},     // valid, dilation 2
      {6, 4, 7, 9, 10, 3, 5, {1, 1, 2, 1, 1, 2, 2}},    // rectangular, mixed, groups 2
      // stride 1 with Og <= Cg: dx by the transposed convolution
      {9, 8, 7, 6, 6, 3, 3, {1, 1, 1, 1, 1, 1, 1}},     // 3x3 same
      {7, 12, 9, 8, 10, 3, 3, {1, 1, 0, 0, 2, 2, 2}},   // valid, dilation 2, groups 2
      {6, 12, 7, 9, 10, 3, 5, {1, 1, 2, 1, 1, 2, 2}},   // rectangular, pads 2,1 (flip 0,7)
      {5, 12, 4, 5, 6, 1, 1, {}},                       // pointwise
      {5, 6, 4, 5, 10, 1, 1, {}},                       // pointwise, Og 10
      {4, 3, 8, 8, 6, 1, 1, {2, 2, 0, 0, 1, 1, 1}},     // 1x1 stride 2, Og 6
      // stride-1 rows of several 16-lane chunks (the masked-vector im2col):
      // widths on and around chunk edges, left and right padding cut inside
      // a chunk, dilation, and a width past the vector path (65: plain loop)
      {2, 3, 4, 16, 6, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
      {2, 3, 4, 17, 6, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
      {2, 2, 3, 37, 6, 3, 3, {1, 1, 2, 2, 2, 2, 1}},
      {2, 2, 3, 38, 6, 3, 5, {1, 1, 0, 0, 1, 1, 1}},
      {1, 2, 3, 64, 6, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
      {1, 2, 3, 65, 6, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
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
      const Tensor dy = rand_tensor({c.N, c.O, g.OH, g.OW}, seed++);
      const Conv2dGrads got = conv2d_backward(x, w, dy, c.s, true, true, true);
      const Conv2dGrads want = conv2d_backward_ref(x, w, dy, c.s, true, true, true);
      expect_close(got.dx, want.dx, tol_for(c.O / c.s.groups * c.KH * c.KW), name_of(c) + " dx");
      expect_close(got.dw, want.dw, tol_for(c.N * g.OH * g.OW), name_of(c) + " dw");
      expect_close(got.db, want.db, tol_for(c.N * g.OH * g.OW), name_of(c) + " db");
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

  TEST_CASE("conv2d GEMM path (batched images): identical bits at 1 and 2 threads") {
    const int saved = num_threads();
    const std::vector<ConvCase> cs = {{21, 4, 16, 17, 12, 3, 3, {1, 1, 1, 1, 1, 1, 2}},
                                      {11, 12, 10, 9, 10, 3, 3, {1, 1, 1, 1, 1, 1, 2}},
                                      {19, 3, 21, 20, 8, 3, 3, {2, 2, 1, 1, 1, 1, 1}}};
    uint64_t seed = 300;
    for (const auto& c : cs) {
      const Tensor x = rand_tensor({c.N, c.C, c.H, c.W}, seed++);
      const Tensor w = rand_tensor({c.O, c.C / c.s.groups, c.KH, c.KW}, seed++);
      const Tensor b = rand_tensor({c.O}, seed++);
      const Conv2dGeom g = conv2d_geom(x.shape(), w.shape(), nullptr, c.s);
      REQUIRE(conv2d_images_per_gemm(g) > 1);
      const Tensor dy = rand_tensor({c.N, c.O, g.OH, g.OW}, seed++);
      std::vector<std::vector<float>> res[2];
      for (int t : {1, 2}) {
        set_num_threads(t);
        const Conv2dGrads gr = conv2d_backward(x, w, dy, c.s, true, true, true);
        res[t - 1] = {conv2d_forward(x, w, b, c.s).to_vector(), gr.dx.to_vector(),
                      gr.dw.to_vector(), gr.db.to_vector()};
      }
      set_num_threads(saved);
      for (size_t i = 0; i < 4; ++i) CHECK_MESSAGE(res[0][i] == res[1][i], name_of(c), " result ", i);
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
          "conv2d: expected x of shape [N,C,IH,IW], got [3,5,5]");
    CHECK(err([&] { conv2d_backward(x, zeros({2, 3, 3, 3}), zeros({1, 2, 4, 4}), {}, 1, 1, 1); }) ==
          "conv2d_backward: dy has shape [1,2,4,4], expected [1,2,3,3]");
    CHECK(err([&] { max_pool2d_forward(x, {2, 2, 0, 2, 0, 0}); }) ==
          "max_pool2d: stride must be positive, got (0,2)");
    CHECK(err([&] { avg_pool2d_forward(x, {2, 2, 2, 2, 2, 0}); }) ==
          "avg_pool2d: padding (2,0) must be >= 0 and at most half the kernel 2x2");
    CHECK(err([&] { max_pool2d_forward(x, {7, 2, 1, 1, 0, 0}); }) ==
          "max_pool2d: kernel 7x2 larger than padded input 5x5 (x [1,3,5,5])");
  }

  TEST_CASE("conv2d picks the direct path only for few output channels per group") {
    const Conv2dSpec pad3{1, 1, 3, 3, 1, 1, 1};
    CHECK(conv2d_uses_direct(conv2d_geom({2, 2, 28, 28}, {1, 2, 7, 7}, nullptr, pad3)));
    CHECK(!conv2d_uses_direct(conv2d_geom({2, 64, 28, 28}, {64, 64, 3, 3}, nullptr, {})));
    CHECK(!conv2d_uses_direct(conv2d_geom({2, 64, 1, 1}, {4, 64, 1, 1}, nullptr, {})));  // 1x1: GEMM
  }

  TEST_CASE("conv2d batches images into one GEMM when an image has few outputs") {
    const Conv2dSpec pad1{1, 1, 1, 1, 1, 1, 1};
    auto per_gemm = [](const Shape& x, const Shape& w, const Conv2dSpec& s) {
      return conv2d_images_per_gemm(conv2d_geom(x, w, nullptr, s));
    };
    CHECK(per_gemm({128, 32, 14, 14}, {64, 32, 3, 3}, pad1) == 4);  // 196 columns each
    CHECK(per_gemm({50, 4, 16, 17}, {8, 4, 3, 3}, pad1) == 4);      // 272 columns each
    CHECK(per_gemm({13, 4, 5, 6}, {12, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 2}) == 13);  // capped by N
    CHECK(per_gemm({64, 64, 28, 28}, {64, 64, 3, 3}, pad1) == 1);   // col buffer 1.7 MiB
    CHECK(per_gemm({8, 16, 4, 4}, {32, 16, 1, 1}, {}) == 1);        // pointwise: in place
  }

  TEST_CASE("adaptive pools match the plain loops (divisible, non-divisible, global)") {
    uint64_t seed = 900;
    struct Case { Shape x; int64_t oh, ow; };
    const std::vector<Case> cs = {{{2, 3, 7, 9}, 1, 1},  {{2, 3, 7, 9}, 3, 4}, {{1, 2, 6, 6}, 3, 3},
                                  {{2, 2, 5, 11}, 5, 11}, {{1, 4, 10, 3}, 4, 2}, {{3, 5, 17, 33}, 1, 1},
                                  {{1, 1, 1, 1}, 1, 1},  {{2, 2, 4, 5}, 3, 7}};
    for (const auto& c : cs) {
      const std::string what = shape_str(c.x) + " -> " + std::to_string(c.oh) + "x" + std::to_string(c.ow);
      const Tensor x = rand_tensor(c.x, seed++);
      expect_close(adaptive_avg_pool2d_forward(x, c.oh, c.ow),
                   adaptive_avg_pool2d_forward_ref(x, c.oh, c.ow), tol_for(c.x[2] * c.x[3]), what + " avg");
      const AdaptiveMaxResult m = adaptive_max_pool2d_forward(x, c.oh, c.ow);
      const AdaptiveMaxResult mr = adaptive_max_pool2d_forward_ref(x, c.oh, c.ow);
      CHECK_MESSAGE(m.y.to_vector() == mr.y.to_vector(), what);
      CHECK_MESSAGE(m.idx.to_vector() == mr.idx.to_vector(), what);
      // avg backward: each output spreads dy / window size over its window.
      const Tensor dy = rand_tensor(m.y.shape(), seed++);
      Tensor want = zeros(c.x);
      const int64_t H = c.x[2], W = c.x[3];
      for (int64_t pl = 0; pl < c.x[0] * c.x[1]; ++pl)
        for (int64_t oh = 0; oh < c.oh; ++oh)
          for (int64_t ow = 0; ow < c.ow; ++ow) {
            const int64_t hs = (oh * H) / c.oh, he = ((oh + 1) * H + c.oh - 1) / c.oh;
            const int64_t ws = (ow * W) / c.ow, we = ((ow + 1) * W + c.ow - 1) / c.ow;
            for (int64_t ih = hs; ih < he; ++ih)
              for (int64_t iw = ws; iw < we; ++iw)
                want.data()[pl * H * W + ih * W + iw] +=
                    dy.data()[(pl * c.oh + oh) * c.ow + ow] / float((he - hs) * (we - ws));
          }
      expect_close(adaptive_avg_pool2d_backward(dy, c.x), want, 1e-6, what + " avg backward");
    }
    // PyTorch's windows for 7 -> 3: [0,3), [2,5), [4,7) (overlapping).
    CHECK(adaptive_start(1, 7, 3) == 2);
    CHECK(adaptive_end(1, 7, 3) == 5);
    CHECK(adaptive_end(2, 7, 3) == 7);
  }

  TEST_CASE("global max pool: first max on ties, NaN propagates") {
    Tensor x = zeros({1, 2, 5, 7});
    x.data()[3] = 2.f, x.data()[20] = 2.f;   // plane 0: tie, first at 3
    x.data()[35 + 30] = 1.f;                 // plane 1: max at 30 (in the scalar tail)
    const AdaptiveMaxResult m = adaptive_max_pool2d_forward(x, 1, 1);
    CHECK(m.idx.to_vector() == std::vector<int32_t>{3, 30});
    x.data()[35 + 9] = NAN;
    CHECK(std::isnan(adaptive_max_pool2d_forward(x, 1, 1).y.data()[1]));
  }

  TEST_CASE("channel pooling matches the plain loops; backward by brute force") {
    uint64_t seed = 950;
    for (const Shape& xs : {Shape{2, 3, 5, 7}, Shape{1, 64, 28, 28}, Shape{3, 1, 4, 4},
                            Shape{2, 5, 33, 35}, Shape{1, 2, 1, 17}}) {
      const int64_t B = xs[0], C = xs[1], HW = xs[2] * xs[3];
      Tensor x = rand_tensor(xs, seed++);
      if (C > 1) x.data()[HW + 2] = x.data()[2] = 5.f;  // a tie at pixel 2 of image 0
      std::vector<float> mean(size_t(2 * B * HW)), mx(mean.size()), rmean(mean.size()), rmx(mean.size());
      std::vector<int32_t> arg(mean.size()), rarg(mean.size());
      channel_pool_forward(x.data(), nullptr, B, C, HW, mean.data(), mx.data(), arg.data(), 2 * HW);
      channel_pool_forward_ref(x.data(), nullptr, B, C, HW, rmean.data(), rmx.data(), rarg.data(), 2 * HW);
      for (int64_t b = 0; b < B; ++b) {
        const size_t o = size_t(b * 2 * HW);
        test::expect_close(mean.data() + o, rmean.data() + o, HW, tol_for(C), shape_str(xs) + " mean");
        CHECK(std::equal(mx.begin() + o, mx.begin() + o + HW, rmx.begin() + o));
        CHECK(std::equal(arg.begin() + o, arg.begin() + o + HW, rarg.begin() + o));
      }
      if (C > 1) CHECK(arg[2] == 0);
      const Tensor dmean = rand_tensor({B, 1, xs[2], xs[3]}, seed++), dmax = rand_tensor({B, 1, xs[2], xs[3]}, seed++);
      std::vector<int32_t> arg1(size_t(B * HW));
      channel_pool_forward(x.data(), nullptr, B, C, HW, nullptr, mx.data(), arg1.data(), HW);
      Tensor dx(xs), want(xs);
      channel_pool_backward(dmean.data(), dmax.data(), arg1.data(), B, C, HW, HW, dx.data());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t p = 0; p < HW; ++p)
            want.data()[(b * C + c) * HW + p] = dmean.data()[b * HW + p] / float(C) +
                                                (arg1[size_t(b * HW + p)] == c ? dmax.data()[b * HW + p] : 0.f);
      expect_close(dx, want, 1e-6, shape_str(xs) + " backward");
    }
  }

  TEST_CASE("batch norm forward/backward match the double loops (train and eval)") {
    uint64_t seed = 990;
    for (const Shape& xs : {Shape{4, 3, 5, 5}, Shape{2, 16, 7, 9}, Shape{8, 5, 1, 1}, Shape{3, 2, 33, 1}}) {
      const int64_t N = xs[0], C = xs[1], S = xs[2] * xs[3];
      // A large mean and a small spread: one-pass variance would fail here.
      const Tensor x = rand_tensor(xs, seed++, 99.f, 101.f);
      const Tensor g = rand_tensor({C}, seed++, 0.5f, 1.5f), b = rand_tensor({C}, seed++);
      Tensor y(xs), yr(xs), m({C}), mr({C}), r({C}), rr({C}), v({C}), vr({C});
      batchnorm_forward_train(x.data(), N, C, S, g.data(), b.data(), 1e-5f, y.data(), m.data(), r.data(), v.data());
      batchnorm_forward_train_ref(x.data(), N, C, S, g.data(), b.data(), 1e-5f, yr.data(), mr.data(), rr.data(), vr.data());
      const std::string what = shape_str(xs);
      expect_close(y, yr, 2e-4, what + " y");
      expect_close(m, mr, 1e-6, what + " mean");
      expect_close(r, rr, 2e-4, what + " rstd");
      expect_close(v, vr, 2e-4, what + " var_unbiased");
      const Tensor dy = rand_tensor(xs, seed++);
      for (bool train : {true, false}) {
        Tensor dx(xs), dxr(xs), dg({C}), dgr({C}), db({C}), dbr({C});
        batchnorm_backward(x.data(), dy.data(), N, C, S, g.data(), mr.data(), rr.data(), train, dx.data(), dg.data(), db.data());
        batchnorm_backward_ref(x.data(), dy.data(), N, C, S, g.data(), mr.data(), rr.data(), train, dxr.data(), dgr.data(), dbr.data());
        const std::string w2 = what + (train ? " train" : " eval");
        expect_close(dx, dxr, 1e-3, w2 + " dx");
        expect_close(dg, dgr, tol_for(N * S, 1e-6), w2 + " dgamma");
        expect_close(db, dbr, tol_for(N * S), w2 + " dbeta");
      }
      Tensor ye(xs), yer(xs);
      batchnorm_forward_eval(x.data(), N, C, S, g.data(), b.data(), mr.data(), rr.data(), ye.data());
      expect_close(ye, yr, 2e-4, what + " eval with the batch stats = train");
    }
  }
}

}  // namespace
}  // namespace qkv
