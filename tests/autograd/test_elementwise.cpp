// Elementwise op gradients: every broadcasting binary op over the broadcast
// patterns (scalar, [1], row, column, middle axis, both sides), scalar ops and
// pow, every unary op; forward values against the engine, inputs that need no
// gradient, accumulation over two backward passes, non-contiguous-origin inputs,
// which operand each unary backward reads, and a wrong backward that must fail.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

using Fn = test::GradFn;
using test::expect_ok;
using test::rv;

// Values on the grid k/10 + offset, k in [-10, 10): two tensors with offsets 0 and
// 0.05 differ by >= 0.05 everywhere, however they broadcast, so maximum/minimum
// stay away from ties under gradcheck's ~0.01 steps.
Tensor grid_tensor(Shape s, uint64_t seed, float offset) {
  Tensor t(std::move(s));
  Generator g(seed);
  for (float& v : t) v = float(g.next_below(20) - 10) * 0.1f + offset;
  return t;
}

// Values with 0.1 <= |v| <= 1, random sign: away from the kinks of relu and abs.
Tensor away_from_zero(Shape s, uint64_t seed) {
  Tensor t = test::rand_tensor(std::move(s), seed, 0.1f, 1.f);
  Generator g(seed + 1000);
  for (float& v : t)
    if (g.next_below(2)) v = -v;
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

const std::vector<BinaryOp> kBinary = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,
                                       BinaryOp::div, BinaryOp::maximum, BinaryOp::minimum};

const std::vector<UnaryOp> kUnary = {UnaryOp::neg,   UnaryOp::exp, UnaryOp::log,  UnaryOp::sqrt,
                                     UnaryOp::rsqrt, UnaryOp::abs, UnaryOp::tanh, UnaryOp::sigmoid,
                                     UnaryOp::relu,  UnaryOp::gelu};

// Every broadcast pattern: same shape, scalar [] and [1] on either side, row [N]
// over [M,N], column [M,1], middle axis [A,1,C], both sides [3,1,5] vs [1,4,1],
// a rank-4 vs rank-3 mix, and one-element shapes.
const std::vector<std::pair<Shape, Shape>> kPairs = {
    {{3, 4}, {3, 4}},
    {{3, 4}, {}},
    {{}, {3, 4}},
    {{3, 4}, {1}},
    {{1}, {2, 3}},
    {{3, 4}, {4}},
    {{4}, {3, 4}},
    {{3, 1}, {3, 4}},
    {{3, 4}, {3, 1}},
    {{2, 1, 5}, {2, 3, 5}},
    {{3, 1, 5}, {1, 4, 1}},
    {{2, 3, 1, 5}, {3, 4, 1}},
    {{}, {}},
    {{1}, {}},
};

// Inputs for op on shapes (sa, sb): divisors positive in [0.5, 2]; maximum and
// minimum on interleaved grids.
std::pair<Var, Var> binary_inputs(BinaryOp op, const Shape& sa, const Shape& sb, uint64_t seed) {
  if (op == BinaryOp::maximum || op == BinaryOp::minimum)
    return {Var(grid_tensor(sa, seed, 0.f), true), Var(grid_tensor(sb, seed + 1, 0.05f), true)};
  if (op == BinaryOp::div) return {rv(sa, seed), rv(sb, seed + 1, 0.5f, 2.f)};
  return {rv(sa, seed), rv(sb, seed + 1)};
}

// Input range for each unary op: positive for log/sqrt/rsqrt, away from 0 for the kinks.
Var unary_input(UnaryOp op, Shape s, uint64_t seed) {
  switch (op) {
    case UnaryOp::log:
    case UnaryOp::sqrt:
    case UnaryOp::rsqrt:
      return rv(std::move(s), seed, 0.5f, 2.f);
    case UnaryOp::abs:
    case UnaryOp::relu:
      return Var(away_from_zero(std::move(s), seed), true);
    case UnaryOp::exp:
      return rv(std::move(s), seed, -2.f, 2.f);
    default:
      return rv(std::move(s), seed, -3.f, 3.f);
  }
}

// A broken op: out = a + b whose backward is 0.1 off at input 1, element 2 (the
// true value is at most 2 in size here, so the tolerance is ~0.04 at most).
Var bad_add(const Var& a, const Var& b) {
  Tensor out = qkv::add(a.value(), b.value());
  return record("bad_add", out, {a, b},
                [sa = a.shape(), sb = b.shape()](const Tensor& g, const std::vector<bool>&) {
                  Tensor db = sum_to_shape(g, sb).clone();
                  db.data()[2] += 0.1f;
                  return std::vector<Tensor>{sum_to_shape(g, sa), db};
                });
}

}  // namespace

TEST_SUITE("autograd/elementwise") {
  TEST_CASE("binary ops: gradients over every broadcast pattern") {
    uint64_t seed = 1;
    for (BinaryOp op : kBinary) {
      for (const auto& [sa, sb] : kPairs) {
        auto [a, b] = binary_inputs(op, sa, sb, seed += 2);
        expect_ok([op](auto& in) { return binary(op, in[0], in[1]); }, {a, b},
                  std::string(binary_name(op)) + " " + shape_str(sa) + " , " + shape_str(sb));
        CHECK(a.grad().shape() == sa);
        CHECK(b.grad().shape() == sb);
      }
    }
  }

  TEST_CASE("binary ops: forward values are the engine's, bit for bit") {
    uint64_t seed = 100;
    for (BinaryOp op : kBinary) {
      for (const auto& [sa, sb] : kPairs) {
        auto [a, b] = binary_inputs(op, sa, sb, seed += 2);
        Var y = binary(op, a, b);
        CHECK(y.requires_grad());
        CHECK(same_bits(y.value(), binary(op, a.value(), b.value())));
        tape_clear();
      }
    }
    Var a = rv({2, 3}, 1), b = rv({3}, 2, 0.5f, 2.f);
    CHECK(same_bits((a + b).value(), add(a.value(), b.value())));
    CHECK(same_bits((a - b).value(), sub(a.value(), b.value())));
    CHECK(same_bits((a * b).value(), mul(a.value(), b.value())));
    CHECK(same_bits((a / b).value(), div(a.value(), b.value())));
    CHECK(same_bits(maximum(a, b).value(), maximum(a.value(), b.value())));
    CHECK(same_bits(minimum(a, b).value(), minimum(a.value(), b.value())));
    tape_clear();
  }

  TEST_CASE("binary ops: an input that requires no gradient gets none, and is held fixed") {
    uint64_t seed = 200;
    for (BinaryOp op : kBinary) {
      for (int which = 0; which < 2; ++which) {
        auto [a, b] = binary_inputs(op, {3, 4}, {4}, seed += 2);
        (which == 0 ? b : a).set_requires_grad(false);
        expect_ok([op](auto& in) { return binary(op, in[0], in[1]); }, {a, b},
                  std::string(binary_name(op)) + " constant input " + std::to_string(1 - which));
        CHECK((which == 0 ? a : b).has_grad());
        CHECK_FALSE((which == 0 ? b : a).has_grad());
      }
    }
    // Neither requires one: nothing is recorded.
    Var c = rv({3}, 1, -1.f, 1.f, false), d = rv({3}, 2, -1.f, 1.f, false);
    const size_t before = tape_size();
    Var y = c * d + c;
    CHECK_FALSE(y.requires_grad());
    CHECK(tape_size() == before);
  }

  TEST_CASE("maximum/minimum: ties go to the first input, NaN to the side it came from") {
    Var a(Tensor::from({4}, {1.f, 2.f, 3.f, NAN}), true);
    Var b(Tensor::from({4}, {1.f, 5.f, 0.f, 1.f}), true);
    backward(maximum(a, b), Tensor::from({4}, {1.f, 2.f, 3.f, 4.f}));
    CHECK(a.grad().to_vector() == std::vector<float>{1.f, 0.f, 3.f, 4.f});
    CHECK(b.grad().to_vector() == std::vector<float>{0.f, 2.f, 0.f, 0.f});
    a.zero_grad();
    b.zero_grad();
    backward(minimum(a, b), Tensor::from({4}, {1.f, 2.f, 3.f, 4.f}));
    CHECK(a.grad().to_vector() == std::vector<float>{1.f, 2.f, 0.f, 4.f});
    CHECK(b.grad().to_vector() == std::vector<float>{0.f, 0.f, 3.f, 0.f});
    // NaN in b: b wins, and gets the gradient. A broadcast [1] side sums its share.
    Var c(Tensor::from({3}, {1.f, 2.f, 3.f}), true), s(Tensor::from({1}, {2.f}), true);
    backward(maximum(c, s), ones({3}));
    CHECK(c.grad().to_vector() == std::vector<float>{0.f, 1.f, 1.f});  // tie at 2 -> c
    CHECK(s.grad().to_vector() == std::vector<float>{1.f});
    Var n(Tensor::from({1}, {NAN}), true);
    c.zero_grad();
    backward(minimum(c, n), ones({3}));
    CHECK(c.grad().to_vector() == std::vector<float>{0.f, 0.f, 0.f});
    CHECK(n.grad().to_vector() == std::vector<float>{3.f});
  }

  TEST_CASE("broadcast gradients are exact sums (hand-checked)") {
    // [2,1,3] * [1,2,1]: da[i,0,k] = sum_j g * b[j], db[0,j,0] = sum_{i,k} g * a.
    Var a(Tensor::from({2, 1, 3}, {1, 2, 3, 4, 5, 6}), true);
    Var b(Tensor::from({1, 2, 1}, {10, 100}), true);
    backward(a * b, ones({2, 2, 3}));
    CHECK(a.grad().to_vector() == std::vector<float>(6, 110.f));
    CHECK(b.grad().to_vector() == std::vector<float>{21.f, 21.f});
    // sub: the stretched right side gets -sum(g).
    Var r(Tensor::from({3}, {1, 2, 3}), true), m(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}), true);
    backward(m - r, Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
    CHECK(r.grad().to_vector() == std::vector<float>{-5.f, -7.f, -9.f});
    CHECK(m.grad().to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
  }

  TEST_CASE("x op x: the same Var on both sides") {
    Var x = rv({2, 3}, 7, 0.5f, 2.f);
    expect_ok([](auto& in) { return in[0] * in[0]; }, {x}, "x*x");
    expect_ok([](auto& in) { return in[0] / in[0]; }, {x}, "x/x");
    expect_ok([](auto& in) { return in[0] - in[0] * 2.f; }, {x}, "x - 2x");
    x.zero_grad();
    backward(x * x, ones({2, 3}));
    for (int64_t i = 0; i < 6; ++i) CHECK(x.grad().data()[i] == 2.f * x.value().data()[i]);
  }

  TEST_CASE("scalar ops and operators") {
    Var x = rv({3, 4}, 11);
    expect_ok([](auto& in) { return add_scalar(in[0], 2.5f); }, {x}, "add_scalar");
    expect_ok([](auto& in) { return mul_scalar(in[0], -1.5f); }, {x}, "mul_scalar");
    expect_ok([](auto& in) { return rsub_scalar(in[0], 3.f); }, {x}, "rsub_scalar");
    expect_ok([](auto& in) { return 2.f - in[0] * 3.f + 1.f; }, {x}, "operators");
    expect_ok([](auto& in) { return -(in[0] / 4.f) - 1.f; }, {x}, "neg and division");
    for (int64_t i = 0; i < 12; ++i) {
      const float v = x.value().data()[i];
      CHECK(add_scalar(x, 2.5f).value().data()[i] == v + 2.5f);
      CHECK(mul_scalar(x, -1.5f).value().data()[i] == v * -1.5f);
      CHECK(rsub_scalar(x, 3.f).value().data()[i] == 3.f - v);
      CHECK((x - 1.f).value().data()[i] == v - 1.f);
    }
    tape_clear();
    Var s(Tensor::scalar(2.f), true);
    backward(mul_scalar(s, 3.f));
    CHECK(s.grad().item() == 3.f);
  }

  TEST_CASE("pow_scalar: gradients and values for integer, fractional and negative powers") {
    uint64_t seed = 300;
    for (float p : {2.f, 3.f, 0.5f, -0.5f, -1.f, 1.5f, -2.5f, 1.f, 0.f, 4.f}) {
      Var x = rv({2, 5}, seed++, 0.5f, 2.f);
      expect_ok([p](auto& in) { return pow_scalar(in[0], p); }, {x}, "pow " + std::to_string(p));
      Var y = pow_scalar(x, p);
      for (int64_t i = 0; i < 10; ++i) {
        INFO("p=", p, " x=", x.value().data()[i]);
        CHECK(y.value().data()[i] ==
              doctest::Approx(std::pow(double(x.value().data()[i]), double(p))).epsilon(3e-7));
      }
      tape_clear();
    }
    // Integer powers of negative numbers are defined, and so are their gradients.
    for (float p : {2.f, 3.f, -1.f, 4.f}) {
      Var x(away_from_zero({7}, seed++), true);
      for (float& v : x.value_mut()) v *= 2.f;  // |x| in [0.2, 2]
      expect_ok([p](auto& in) { return pow_scalar(in[0], p); }, {x},
                "pow of negatives " + std::to_string(p));
    }
    // p = 0: zero gradient even at x = 0 (not 0 * inf).
    Var z(Tensor::from({2}, {0.f, 3.f}), true);
    backward(pow_scalar(z, 0.f), ones({2}));
    CHECK(z.grad().to_vector() == std::vector<float>{0.f, 0.f});
  }

  TEST_CASE("unary ops: gradients, forward values, shapes from scalar to rank 3") {
    uint64_t seed = 400;
    for (UnaryOp op : kUnary) {
      for (Shape s : {Shape{}, Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 4}, Shape{40}}) {
        Var x = unary_input(op, s, seed++);
        expect_ok([op](auto& in) { return unary(op, in[0]); }, {x},
                  std::string(unary_name(op)) + " " + shape_str(s));
        Var y = unary(op, x);
        CHECK(y.shape() == s);
        CHECK(same_bits(y.value(), unary(op, x.value())));
        tape_clear();
      }
    }
    // The named functions are the same ops.
    Var x = rv({5}, 9, 0.5f, 2.f);
    CHECK(same_bits(neg(x).value(), unary(UnaryOp::neg, x.value())));
    CHECK(same_bits(exp(x).value(), unary(UnaryOp::exp, x.value())));
    CHECK(same_bits(log(x).value(), unary(UnaryOp::log, x.value())));
    CHECK(same_bits(sqrt(x).value(), unary(UnaryOp::sqrt, x.value())));
    CHECK(same_bits(rsqrt(x).value(), unary(UnaryOp::rsqrt, x.value())));
    CHECK(same_bits(abs(x).value(), unary(UnaryOp::abs, x.value())));
    CHECK(same_bits(tanh(x).value(), unary(UnaryOp::tanh, x.value())));
    CHECK(same_bits(sigmoid(x).value(), unary(UnaryOp::sigmoid, x.value())));
    CHECK(same_bits(relu(x).value(), unary(UnaryOp::relu, x.value())));
    CHECK(same_bits(gelu(x).value(), unary(UnaryOp::gelu, x.value())));
    tape_clear();
  }

  TEST_CASE("unary ops: the gradient values (hand-checked)") {
    auto grad_of = [](UnaryOp op, std::vector<float> v) {
      Var x(Tensor::from({int64_t(v.size())}, v), true);
      backward(unary(op, x), ones({int64_t(v.size())}));
      return x.grad().to_vector();
    };
    CHECK(grad_of(UnaryOp::relu, {-1.f, 0.f, 2.f}) == std::vector<float>{0.f, 0.f, 1.f});
    CHECK(grad_of(UnaryOp::abs, {-1.f, 0.f, 2.f}) == std::vector<float>{-1.f, 0.f, 1.f});
    CHECK(grad_of(UnaryOp::neg, {-1.f, 2.f}) == std::vector<float>{-1.f, -1.f});
    CHECK(grad_of(UnaryOp::sigmoid, {0.f})[0] == 0.25f);
    CHECK(grad_of(UnaryOp::tanh, {0.f})[0] == 1.f);
    CHECK(grad_of(UnaryOp::sqrt, {4.f})[0] == 0.25f);
    CHECK(grad_of(UnaryOp::rsqrt, {4.f})[0] == -0.0625f);
    CHECK(grad_of(UnaryOp::log, {4.f})[0] == 0.25f);
    CHECK(grad_of(UnaryOp::exp, {0.f})[0] == 1.f);
    CHECK(grad_of(UnaryOp::gelu, {0.f})[0] == doctest::Approx(0.5).epsilon(1e-7));
    CHECK(grad_of(UnaryOp::gelu, {1.f})[0] == doctest::Approx(1.0833154705876864).epsilon(1e-6));
  }

  TEST_CASE("unary ops: backward reads only the operand the engine kernel names") {
    // Overwrite the operand backward must not read, after the forward: the
    // gradient cannot change. (Scribbling NaN on the one it reads would.)
    uint64_t seed = 500;
    for (UnaryOp op : kUnary) {
      Var x = unary_input(op, {33}, seed++);
      Tensor up = test::rand_tensor({33}, seed++);
      backward(unary(op, x), up);
      const Tensor want = x.grad().clone();
      x.zero_grad();
      Var y = unary(op, x);
      const Tensor x_saved = x.value().clone();
      if (!unary_backward_reads_x(op)) x.value_mut().fill(NAN);
      if (!unary_backward_reads_y(op)) y.value_mut().fill(NAN);
      backward(y, up);
      INFO(std::string(unary_name(op)));
      CHECK(same_bits(x.grad(), want));
      x.value_mut().copy_from(x_saved);
    }
  }

  TEST_CASE("non-contiguous-origin inputs and chains through layout ops") {
    // Values taken from a permuted / sliced engine tensor.
    Tensor base = test::rand_tensor({4, 3, 5}, 21);
    Var p(permute(base, {2, 0, 1}), true);                                  // [5,4,3]
    Var s(slice(test::rand_tensor({6, 3}, 22, 0.5f, 2.f), 0, 1, 4), true);  // [3,3]
    expect_ok([](auto& in) { return in[0] * in[1]; }, {p, Var(test::rand_tensor({4, 1}, 23), true)},
              "permuted * column");
    expect_ok([](auto& in) { return in[0] / in[1]; },
              {Var(test::rand_tensor({2, 3, 3}, 24), true), s}, "x / sliced");
    // Through the layout ops themselves: the broadcast operand is a permuted Var.
    Var x = rv({3, 4}, 25), w = rv({4, 1}, 26);
    expect_ok(
        [](auto& in) {
          return sigmoid(in[0] + permute(in[1], {1, 0})) * in[0];
        },
        {x, w}, "x + w^T (permuted [1,4])");
    expect_ok(
        [](auto& in) { return maximum(slice(in[0], 1, 1, 3), transpose(in[1], 0, 1) * 0.5f); },
        {Var(grid_tensor({3, 4}, 27, 0.f), true), Var(grid_tensor({1, 3}, 28, 0.05f), true)},
        "maximum of slice and transposed column");
    expect_ok(
        [](auto& in) {
          return gelu(reshape(in[0], {4, 3})) - exp(in[1]);
        },
        {x, rv({3}, 29)}, "gelu(reshape) - exp(row)");
  }

  TEST_CASE("gradients accumulate over two backward passes") {
    Var a = rv({2, 3}, 31), b = rv({3}, 32, 0.5f, 2.f);
    Tensor up = test::rand_tensor({2, 3}, 33);
    auto f = [&] { return tanh(a * b) / b + relu(a); };
    backward(f(), up);
    const Tensor ga = a.grad().clone(), gb = b.grad().clone();
    backward(f(), up);
    for (int64_t i = 0; i < ga.numel(); ++i) CHECK(a.grad().data()[i] == 2.f * ga.data()[i]);
    for (int64_t i = 0; i < gb.numel(); ++i) CHECK(b.grad().data()[i] == 2.f * gb.data()[i]);
  }

  TEST_CASE("NoGrad records nothing") {
    Var a = rv({3}, 41), b = rv({3}, 42);
    tape_clear();
    {
      NoGrad ng;
      Var y = gelu(a * b + a) - pow_scalar(b, 2.f);
      CHECK_FALSE(y.requires_grad());
    }
    CHECK(tape_size() == 0);
  }

  TEST_CASE("a wrong backward is caught, naming the input and the element") {
    Var a = rv({2, 4}, 51), b = rv({4}, 52);
    b.set_name("b");
    expect_ok([](auto& in) { return in[0] + in[1]; }, {a, b}, "the correct add");
    auto r = gradcheck([](auto& in) { return bad_add(in[0], in[1]); }, {a, b});
    CHECK_FALSE(r.ok);
    INFO(r.report);
    CHECK(r.report.find("input 1 ('b') shape [4] element 2:") != std::string::npos);
  }

  TEST_CASE("errors name the op and the shapes") {
    Var a = rv({2, 3}, 61), b = rv({4}, 62);
    CHECK(test::error_of([&] { add(a, b); }) == "add: shapes [2,3] and [4] do not broadcast");
    CHECK(test::error_of([&] { maximum(a, b); }) ==
          "maximum: shapes [2,3] and [4] do not broadcast");
    CHECK(test::error_of([&] { binary(BinaryOp::div, b, a); }) ==
          "div: shapes [4] and [2,3] do not broadcast");
    CHECK_THROWS_AS(relu(Var()), Error);
    CHECK_THROWS_AS(add(Var(), a), Error);
  }

}  // TEST_SUITE
}  // namespace qkv
