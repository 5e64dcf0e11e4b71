// Reduction gradients: sum and mean over every axis list (empty, one, several,
// negative, adjacent or not) with keepdim on and off, max over each axis with the
// gradient to the first maximum; forward values against the engine and a double
// oracle, the large-tensor backward paths, non-contiguous-origin inputs, errors,
// accumulation, and a wrong backward that must fail.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/kernels/reduce.h"
#include "engine/threads.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

using Fn = test::GradFn;
using test::expect_ok;
using test::rv;
using Axes = std::vector<int64_t>;

// Distinct values 0.1 apart (a shuffled grid centred on 0): every max is unique
// and no gradcheck step (<= 0.03 here) can change which element it is.
Tensor distinct(Shape s, uint64_t seed) {
  Tensor t(std::move(s));
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) t.data()[i] = float(i - n / 2) * 0.1f;
  Generator g(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(t.data()[i], t.data()[g.next_below(i + 1)]);
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

std::string axes_str(const Axes& axes, bool keepdim) {
  return shape_str(axes) + (keepdim ? " keepdim" : "");
}

// The double-precision oracle of sum/mean over `axes` (normalised, any order).
Tensor reduce_oracle(const Tensor& x, Axes axes, bool keepdim, bool mean) {
  const Shape& s = x.shape();
  const size_t r = s.size();
  std::vector<bool> red(r, axes.empty());
  for (int64_t a : axes)
    if (r > 0) red[size_t(a < 0 ? a + int64_t(r) : a)] = true;  // a scalar has none
  Shape kept, out;
  for (size_t i = 0; i < r; ++i) {
    kept.push_back(red[i] ? 1 : s[i]);
    if (!red[i] || keepdim) out.push_back(kept.back());
  }
  std::vector<double> acc(size_t(numel_of(kept)), 0.0);
  int64_t count = 1;
  for (size_t i = 0; i < r; ++i)
    if (red[i]) count *= s[i];
  std::vector<int64_t> idx(r, 0);
  for (int64_t f = 0; f < x.numel(); ++f) {
    int64_t rem = f, o = 0;
    for (size_t i = r; i-- > 0;) {
      idx[i] = rem % s[i];
      rem /= s[i];
    }
    for (size_t i = 0; i < r; ++i) o = o * kept[i] + (red[i] ? 0 : idx[i]);
    acc[size_t(o)] += x.data()[f];
  }
  Tensor t(out);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = float(mean ? acc[size_t(i)] / double(count) : acc[size_t(i)]);
  return t;
}

// A broken max: the gradient always goes to element 0 of each row.
Var bad_max(const Var& x) {
  Tensor out = qkv::max(x.value(), 1);
  return record("bad_max", out, {x}, [sx = x.shape()](const Tensor& g, const std::vector<bool>&) {
    Tensor dx = Tensor::zeros(sx);
    for (int64_t i = 0; i < sx[0]; ++i) dx.data()[i * sx[1]] = g.data()[i];
    return std::vector<Tensor>{dx};
  });
}

const std::vector<std::pair<Shape, std::vector<Axes>>> kCases = {
    {{2, 3, 4}, {{}, {0}, {1}, {2}, {-1}, {-3}, {0, 2}, {-1, 0}, {1, 2}, {0, 1}, {0, 1, 2}}},
    {{3, 4, 5, 2}, {{1, 3}, {0, 1}, {2, -1}, {-4, -2}, {3, 1, 0}}},
    {{1, 3, 1}, {{0, 2}, {0}, {}}},
    {{5}, {{0}, {-1}, {}}},
    {{}, {{}, {0}, {-1}}},
};

}  // namespace

TEST_SUITE("autograd/reduce") {
  TEST_CASE("sum and mean: gradients over axis lists, keepdim on and off") {
    uint64_t seed = 1;
    for (const auto& [shape, axis_lists] : kCases) {
      for (const Axes& axes : axis_lists) {
        for (bool keepdim : {false, true}) {
          Var x = rv(shape, seed++);
          const std::string what = shape_str(shape) + " " + axes_str(axes, keepdim);
          expect_ok([&](auto& in) { return sum(in[0], axes, keepdim); }, {x}, "sum " + what);
          expect_ok([&](auto& in) { return mean(in[0], axes, keepdim); }, {x}, "mean " + what);
        }
      }
    }
  }

  TEST_CASE("sum and mean: values against the engine (one axis) and a double oracle") {
    uint64_t seed = 100;
    for (const auto& [shape, axis_lists] : kCases) {
      for (const Axes& axes : axis_lists) {
        for (bool keepdim : {false, true}) {
          Var x = rv(shape, seed++, -1.f, 1.f, /*grad=*/false);
          const std::string what = shape_str(shape) + " " + axes_str(axes, keepdim);
          const Tensor s = sum(x, axes, keepdim).value(), m = mean(x, axes, keepdim).value();
          test::expect_close(s, reduce_oracle(x.value(), axes, keepdim, false), 1e-6,
                             "sum " + what);
          test::expect_close(m, reduce_oracle(x.value(), axes, keepdim, true), 1e-6,
                             "mean " + what);
          CHECK_FALSE(s.shares_storage(x.value()));
          if (axes.size() == 1 && x.dim() > 0) {  // the engine kernel, bit for bit
            CHECK(same_bits(s, qkv::sum(x.value(), axes[0], keepdim)));
            CHECK(same_bits(m, qkv::mean(x.value(), axes[0], keepdim)));
          }
        }
      }
    }
    // Hand-checked.
    Var x(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}), false);
    CHECK(sum(x).item() == 21.f);
    CHECK(mean(x).item() == 3.5f);
    CHECK(sum(x, {0}).value().to_vector() == std::vector<float>{5, 7, 9});
    CHECK(mean(x, {-1}, true).value().shape() == Shape{2, 1});
    CHECK(mean(x, {-1}, true).value().to_vector() == std::vector<float>{2, 5});
    CHECK(sum(x, {0, 1}, true).value().shape() == Shape{1, 1});
  }

  TEST_CASE("sum and mean: the backward broadcasts g exactly (hand-checked)") {
    Var x = rv({2, 3, 4}, 200);
    backward(sum(x, {1}), Tensor::from({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}));
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 4; ++k) CHECK(x.grad().at({i, j, k}) == float(i * 4 + k + 1));
    x.zero_grad();
    backward(mean(x, {0, 2}, true), Tensor::from({1, 3, 1}, {8, 16, 24}));
    for (int64_t j = 0; j < 3; ++j) CHECK(x.grad().at({1, j, 2}) == float(j + 1));
    x.zero_grad();
    backward(mean(x));
    for (float v : x.grad()) CHECK(v == 1.f / 24.f);
  }

  TEST_CASE("sum and mean: large tensors, every broadcast path of the backward, any thread count") {
    // [300,200] over axis 0 (g stretched on the outer axis), axis 1 (inner), all
    // axes (a fill), and [40,50,30] over the middle axis: > 32K elements, so the
    // threaded copies run; the result must equal g broadcast, exactly.
    struct Case {
      Shape s;
      Axes axes;
    };
    const std::vector<Case> cases = {{{300, 200}, {0}},
                                     {{300, 200}, {1}},
                                     {{300, 200}, {}},
                                     {{40, 50, 30}, {1}},
                                     {{40, 50, 30}, {0, 2}}};
    const int saved = num_threads();
    uint64_t seed = 300;
    for (const Case& c : cases) {
      Var x = rv(c.s, seed++);
      const Tensor ref_out = reduce_oracle(x.value(), c.axes, true, false);
      const Tensor g = test::rand_tensor(ref_out.shape(), seed++);
      std::vector<float> got[2];
      for (int t = 1; t <= 2; ++t) {
        set_num_threads(t);
        x.zero_grad();
        backward(sum(x, c.axes, true), g);
        got[t - 1] = x.grad().to_vector();
      }
      set_num_threads(saved);
      INFO(shape_str(c.s), " axes ", shape_str(c.axes));
      CHECK(got[0] == got[1]);
      // Expected: dx[i] = g[kept index of i].
      const Shape& s = c.s;
      std::vector<bool> red(s.size(), c.axes.empty());
      for (int64_t a : c.axes) red[size_t(a)] = true;
      int64_t bad = 0;
      std::vector<int64_t> idx(s.size());
      for (int64_t f = 0; f < x.numel(); ++f) {
        int64_t rem = f, o = 0;
        for (size_t i = s.size(); i-- > 0;) {
          idx[i] = rem % s[i];
          rem /= s[i];
        }
        for (size_t i = 0; i < s.size(); ++i) o = o * (red[i] ? 1 : s[i]) + (red[i] ? 0 : idx[i]);
        bad += got[0][size_t(f)] != g.data()[o];
      }
      CHECK(bad == 0);
    }
  }

  TEST_CASE("sum and mean: empty tensors") {
    Var x(Tensor({2, 0}), true);
    Var s = sum(x, {1});
    CHECK(s.value().to_vector() == std::vector<float>{0.f, 0.f});
    Var m = mean(x, {1});
    CHECK(std::isnan(m.value().data()[0]));
    backward(s, ones({2}));
    CHECK(x.grad().shape() == Shape{2, 0});
    CHECK(sum(x, {0}).shape() == Shape{0});
    tape_clear();
  }

  TEST_CASE("max: gradients over each axis, keepdim on and off") {
    uint64_t seed = 400;
    for (Shape s : {Shape{3, 4, 5}, Shape{2, 7}, Shape{6}, Shape{}, Shape{1, 3, 1}}) {
      const int64_t rank = int64_t(s.size());
      for (int64_t axis = -std::max<int64_t>(rank, 1); axis < std::max<int64_t>(rank, 1); ++axis) {
        for (bool keepdim : {false, true}) {
          Var x(distinct(s, seed++), true);
          const std::string what =
              shape_str(s) + " axis " + std::to_string(axis) + (keepdim ? " keepdim" : "");
          expect_ok([&](auto& in) { return max(in[0], axis, keepdim); }, {x}, "max " + what);
          // The forward equals the engine's max, with and without a tape.
          const Tensor want = qkv::max(x.value(), axis, keepdim);
          CHECK(same_bits(max(x, axis, keepdim).value(), want));
          NoGrad ng;
          CHECK(same_bits(max(x, axis, keepdim).value(), want));
        }
      }
    }
    tape_clear();
  }

  TEST_CASE("max: the gradient goes to the first maximal element") {
    Var x(Tensor::from({2, 3}, {1, 3, 3, 2, 2, 0}), true);
    backward(max(x, 1), Tensor::from({2}, {5, 7}));
    CHECK(x.grad().to_vector() == std::vector<float>{0, 5, 0, 7, 0, 0});
    x.zero_grad();
    backward(max(x, 0, true), Tensor::from({1, 3}, {1, 2, 3}));
    CHECK(x.grad().to_vector() == std::vector<float>{0, 2, 3, 1, 0, 0});
    // A NaN is the maximum (as torch), and it takes the gradient.
    Var n(Tensor::from({4}, {1, NAN, 5, NAN}), true);
    Var y = max(n, 0);
    CHECK(std::isnan(y.item()));
    backward(y);
    CHECK(n.grad().to_vector() == std::vector<float>{0, 1, 0, 0});
  }

  TEST_CASE("non-contiguous-origin inputs and chains through layout ops") {
    Var p(permute(test::rand_tensor({4, 3, 5}, 501), {2, 0, 1}), true);  // [5,4,3]
    expect_ok([](auto& in) { return sum(in[0], {0, 2}); }, {p}, "sum of a permuted tensor");
    Var sl(slice(distinct({6, 5}, 502), 0, 1, 4), true);  // [3,5]
    expect_ok([](auto& in) { return max(in[0], -1); }, {sl}, "max of a sliced tensor");
    Var x = rv({3, 4, 5}, 503);
    expect_ok(
        [](auto& in) {
          return mean(permute(in[0], {2, 0, 1}), {-1, 0}, true);
        },
        {x}, "mean(permute(x))");
    expect_ok([](auto& in) { return sum(transpose(in[0], 0, 2) * 3.f, {1}); }, {x},
              "sum(transpose(x) * 3)");
    Var d(distinct({4, 6}, 504), true);
    expect_ok([](auto& in) { return max(transpose(slice(in[0], 1, 1, 5), 0, 1), 1, true); }, {d},
              "max(transpose(slice(x)))");
    expect_ok([](auto& in) { return sum(exp(in[0]) * in[0], {1}) / mean(in[0] * in[0], {1}); },
              {rv({3, 4}, 505, 0.5f, 1.f)}, "a composite of sums and means");
  }

  TEST_CASE("inputs without requires_grad get nothing; NoGrad records nothing") {
    Var a = rv({3, 4}, 601), c = rv({3, 4}, 602, -1.f, 1.f, /*grad=*/false);
    expect_ok([](auto& in) { return sum(in[0] * in[1], {1}); }, {a, c}, "sum(a * const)");
    CHECK(a.has_grad());
    CHECK_FALSE(c.has_grad());
    CHECK_FALSE(sum(c).requires_grad());
    CHECK_FALSE(max(c, 0).requires_grad());
    tape_clear();
    {
      NoGrad ng;
      Var y = mean(max(a, 1)) + sum(a);
      CHECK_FALSE(y.requires_grad());
    }
    CHECK(tape_size() == 0);
  }

  TEST_CASE("gradients accumulate over two backward passes") {
    Var x(distinct({3, 5}, 701), true);
    auto f = [&] { return sum(max(x, 1) * 2.f) + mean(x * x, {0, 1}); };
    backward(f());
    const Tensor g1 = x.grad().clone();
    backward(f());
    for (int64_t i = 0; i < g1.numel(); ++i) CHECK(x.grad().data()[i] == 2.f * g1.data()[i]);
  }

  TEST_CASE("a wrong backward is caught, naming the input and the element") {
    // Row maxima are not in column 0, so the broken max's gradient at element 0 is
    // wrong (the true one is 0).
    Var x(Tensor::from({2, 3}, {0.1f, 0.9f, 0.5f, 0.2f, 0.4f, 0.8f}), true);
    x.set_name("x");
    expect_ok([](auto& in) { return max(in[0], 1); }, {x}, "the correct max");
    auto r = gradcheck([](auto& in) { return bad_max(in[0]); }, {x});
    CHECK_FALSE(r.ok);
    INFO(r.report);
    CHECK(r.report.find("input 0 ('x') shape [2,3] element 0:") != std::string::npos);
  }

  TEST_CASE("errors name the op, the axis and the shape") {
    Var x = rv({2, 3}, 801);
    CHECK(test::error_of([&] { sum(x, {3}); }) == "sum: axis 3 out of range for rank 2");
    CHECK(test::error_of([&] { mean(x, {-3}); }) == "mean: axis -3 out of range for rank 2");
    CHECK(test::error_of([&] { sum(x, {1, -1}); }) == "sum: axis -1 repeated in [1,-1] for rank 2");
    CHECK(test::error_of([&] { mean(x, {0, 0}); }) == "mean: axis 0 repeated in [0,0] for rank 2");
    CHECK(test::error_of([&] { max(x, 2); }) == "max: axis 2 out of range for rank 2");
    CHECK(test::error_of([&] { max(x.detach(), -3); }) == "max: axis -3 out of range for rank 2");
    Var s(Tensor::scalar(1.f), true);
    CHECK(test::error_of([&] { sum(s, {1}); }) ==
          "sum: axis 1 out of range for a scalar (shape []) (expected 0 or -1)");
    CHECK(test::error_of([&] { max(s, 1); }) ==
          "max: axis 1 out of range for a scalar (shape []) (expected 0 or -1)");
    Var e(Tensor({2, 0}), true);
    CHECK(test::error_of([&] { max(e, 1); }) ==
          "max: cannot reduce over the empty axis 1 of shape [2,0]");
    tape_clear();
  }

}  // TEST_SUITE
}  // namespace qkv
